"""Playbook loading: the shipped playbooks validate; every kind of mistake is reported with file:line."""

from __future__ import annotations

import textwrap

import pytest

from fabric_ops.health.detectors import DETECTOR_KINDS
from fabric_ops.health.playbooks import PlaybookError, load_playbooks, select, validate


def test_shipped_playbooks_validate_and_cover_every_detector():
    books = load_playbooks()
    assert {kind for book in books for kind in book.kinds} == set(DETECTOR_KINDS)
    flap = next(b for b in books if b.name == "link-flap")
    assert [a.action for a in flap.actions] == ["drain-link", "notify"]
    assert flap.verification.metric == "link-shut" and flap.verification.within == 30
    assert flap.restore_after == 300 and flap.guardrails == {"min_uplink_fraction": 0.75}
    assert flap.source.endswith("link-flap.yml:4")


GOOD = """\
name: ok
match: {kind: link-flap}
actions: [{action: drain-link}]
verification: {metric: link-carrying-bps, op: "<=", value: 0, within: 5}
"""


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (GOOD.replace("link-flap", "link-flapp"), 2, "match.kind: unknown 'link-flapp'"),
        (GOOD.replace("link-flap", "'*'"), 2, "is a wildcard"),
        (GOOD.replace("drain-link", "drain-everything"), 3, "action: unknown 'drain-everything'"),
        (GOOD + "mode: yolo\n", 5, "mode: 'yolo' is not one of"),
        (GOOD + "cooldwn: 5\n", 5, "unknown key 'cooldwn'"),
        (GOOD.replace("within: 5", "within: -1"), 4, "within must be positive"),
        (GOOD.replace("link-carrying-bps", "bps"), 4, "verification.metric: unknown 'bps'"),
        (GOOD.replace('op: "<="', 'op: "~"'), 4, "verification.op"),
        ("\n".join(GOOD.splitlines()[:3]) + "\n", 1, "need a 'verification'"),
        (GOOD.replace("name: ok\n", ""), 1, "missing required key 'name'"),
        (GOOD + "cooldown: soon\n", 5, "cooldown must be float or int, got 'soon'"),
        (GOOD + "restore: {after_clean: 10}\n".replace("10", "ten"), 5, "restore.after_clean must be"),
        (GOOD.replace("drain-link}", "apply-intent, overrides: {ecn_minimum: 5}}"), 3, "unknown intent field"),
        (GOOD + "guardrails: {min_uplink: 0.5}\n", 5, "unknown key 'min_uplink'"),
        ("name: ok\nmatch: a: b\n", 2, "YAML syntax: mapping values are not allowed here"),
        (GOOD + "match: {kind: pfc-storm}\n", 5, "duplicate key 'match'"),
    ],
)
def test_problems_name_file_and_line(tmp_path, text, line, message):
    (tmp_path / "bad.yml").write_text(text)
    books, problems = validate(tmp_path)
    assert books == []
    assert any(p.startswith(f"{tmp_path / 'bad.yml'}:{line}: ") and message in p for p in problems), problems
    with pytest.raises(PlaybookError):
        load_playbooks(tmp_path)


def test_duplicate_names_across_files_and_empty_directory(tmp_path):
    assert validate(tmp_path)[1] == [f"{tmp_path}: no playbooks (*.yml)"]
    (tmp_path / "a.yml").write_text(GOOD)
    (tmp_path / "b.yml").write_text(GOOD)
    _, problems = validate(tmp_path)
    assert problems == [f"{tmp_path / 'b.yml'}:1: duplicate playbook name 'ok' (first at {tmp_path / 'a.yml'}:1)"]


def test_select_matches_kind_scope_role_conditions_and_priority(tmp_path):
    (tmp_path / "p.yml").write_text(
        textwrap.dedent(
            """\
            name: generic
            match: {kind: [crc-errors, link-flap]}
            actions: [{action: notify, message: hi}]
            ---
            name: spine-only
            priority: 10
            match:
              kind: link-flap
              scope: link
              roles: [spine]
              conditions: [{field: transitions, op: ">=", value: 5}]
            actions: [{action: drain-link}]
            verification: {metric: link-carrying-bps, op: "<=", value: 0, within: 5}
            """
        )
    )
    books = load_playbooks(tmp_path)
    assert select(books, "link-flap", "link", "spine", {"transitions": 6}).name == "spine-only"
    assert select(books, "link-flap", "link", "spine", {"transitions": 3}).name == "generic"
    assert select(books, "link-flap", "link", "leaf", {"transitions": 6}).name == "generic"
    assert select(books, "link-flap", "interface", "spine", {"transitions": 6}).name == "generic"
    assert select(books, "pfc-storm", "link", "spine", {}) is None


def test_command_validates_shipped_playbooks_and_reports_file_line(tmp_path):
    from io import StringIO

    from django.core.management import CommandError, call_command

    out = StringIO()
    call_command("health", "playbooks", "validate", stdout=out)
    assert f"{len(load_playbooks())} playbooks valid" in out.getvalue()
    (tmp_path / "bad.yml").write_text(GOOD.replace("drain-link", "drain-all"))
    err = StringIO()
    with pytest.raises(CommandError, match="1 problem"):
        call_command("health", "playbooks", "validate", "--dir", str(tmp_path), stderr=err)
    assert f"{tmp_path / 'bad.yml'}:3: action: unknown 'drain-all'" in err.getvalue()


# --- the two remediation actions added later: BGP cost-out and per-port PFC disable -----------------------------
COST_OUT = """\
name: ok
match: {kind: pre-fec-ber, scope: [link]}
actions: [{action: cost-out-link}]
verification: {metric: link-utilisation, op: "<=", value: 0.01, within: 30}
restore: {after_clean: 60, mode: approve}
"""
PFC_OFF = """\
name: ok
match: {kind: pfc-storm, scope: [interface]}
actions:
  - {action: notify, message: storm}
  - {action: disable-pfc}
verification: {metric: device-pause-tx-ps, op: "<=", value: 100, within: 30}
restore: {after_clean: 60}
"""


def test_new_actions_validate_and_are_restorable(tmp_path):
    (tmp_path / "a.yml").write_text(COST_OUT)
    (tmp_path / "b.yml").write_text(PFC_OFF.replace("name: ok", "name: pfc-off"))
    books = {b.name: b for b in load_playbooks(tmp_path)}
    assert [a.action for a in books["ok"].actions] == ["cost-out-link"]
    assert books["ok"].restore_after == 60 and books["ok"].restore_mode == "approve"
    assert books["ok"].verification.metric == "link-utilisation"
    assert [a.action for a in books["pfc-off"].actions] == ["notify", "disable-pfc"]
    assert books["pfc-off"].restore_after == 60


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (COST_OUT.replace("cost-out-link}", "cost-out-link, prepend: 9}"), 3, "action cost-out-link: unknown key "
         "'prepend'"),
        (COST_OUT.replace("cost-out-link}", "cost-out-lnk}"), 3, "action: unknown 'cost-out-lnk'"),
        (COST_OUT.replace("[{action: cost-out-link}]", "[{action: cost-out-link}, {action: drain-link}]"), 3,
         "cost-out-link and drain-link both take the link out"),
        (COST_OUT.replace("scope: [link]", "scope: [interface]"), 2, "cost-out-link acts on a link"),
        (COST_OUT.replace("link-utilisation", "link-utilization"), 4, "verification.metric: unknown"),
        (PFC_OFF.replace("disable-pfc}", "disable-pfc, priority: 3}"), 5, "action disable-pfc: unknown key"),
        (PFC_OFF.replace("scope: [interface]", "scope: [link]"), 2, "disable-pfc acts on a port"),
        (PFC_OFF.replace("disable-pfc", "pfc-watchdog"), 7, "restore: only drain-link, move-dci, cost-out-link, "
         "disable-pfc can be restored"),
        (PFC_OFF.replace("scope: [interface]}", "scope: [interface], after: ok}"), 2, "'ok' cannot escalate from "
         "itself"),
        (PFC_OFF.replace("scope: [interface]}", "scope: [interface], after: ['*']}"), 2, "is a wildcard"),
    ],
)  # fmt: skip
def test_new_action_problems_name_file_and_line(tmp_path, text, line, message):
    (tmp_path / "bad.yml").write_text(text)
    books, problems = validate(tmp_path)
    assert books == []
    assert any(p.startswith(f"{tmp_path / 'bad.yml'}:{line}: ") and message in p for p in problems), problems


def test_escalation_names_a_known_playbook(tmp_path):
    (tmp_path / "a.yml").write_text(PFC_OFF.replace("scope: [interface]}", "scope: [interface], after: pfc-stom}"))
    _, problems = validate(tmp_path)
    assert problems == [f"{tmp_path / 'a.yml'}:1: match.after names unknown playbook(s) pfc-stom"]


def test_escalation_matches_only_a_deliberate_retry_after_its_first_step():
    books = load_playbooks()
    first = select(books, "pfc-storm", "interface", "leaf", {"watchdog_storms": 3})
    assert first.name == "pfc-storm"  # a first delivery (or a re-delivery: ran=None) never escalates
    assert select(books, "pfc-storm", "interface", "leaf", {}, ran=set()).name == "pfc-storm"
    escalated = select(books, "pfc-storm", "interface", "leaf", {}, ran={"pfc-storm"})
    assert escalated.name == "pfc-storm-persistent"
    assert escalated.actions[0].action == "disable-pfc" and escalated.restore_mode == "approve"
    fec = select(books, "pre-fec-ber", "link", "leaf", {"pre_fec_ber": 1e-3})
    assert [a.action for a in fec.actions] == ["cost-out-link"] and fec.guardrails == {"min_uplink_fraction": 0.75}
