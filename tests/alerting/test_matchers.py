"""Matchers, fingerprints and group labels: pure functions, table tests."""

import pytest

from fabric_ops.alerting.matchers import fingerprint, group_labels, match_all, parse
from fabric_ops.errors import ConfigurationError

LABELS = {"alertname": "LinkDown", "severity": "major", "device": "leaf1", "site": "sjc"}


@pytest.mark.parametrize(
    ("matchers", "expected"),
    [
        (["alertname=LinkDown"], True),
        (["alertname=LinkFlap"], False),
        (["severity=~critical|major"], True),
        (["severity=~crit"], False),  # anchored like Alertmanager
        (["severity!~warning|minor"], True),
        (["team!=net"], True),  # a missing label is the empty string
        (["team="], True),
        (['site="sjc"', "device=leaf1"], True),
        (["site=sjc", "device=leaf2"], False),
        ([{"name": "device", "op": "=~", "value": "leaf.*"}], True),
        ([], True),
    ],
)
def test_match_all(matchers, expected) -> None:
    assert match_all(matchers, LABELS) is expected


@pytest.mark.parametrize("text", ["no operator", "1abc=x", "a=~(unclosed"])
def test_bad_matchers_name_the_text(text) -> None:
    with pytest.raises(ConfigurationError, match="matcher"):
        parse(text)


def test_fingerprint_ignores_order_and_sees_values() -> None:
    assert fingerprint({"a": "1", "b": "2"}) == fingerprint({"b": "2", "a": "1"})
    assert fingerprint({"a": "1"}) != fingerprint({"a": "2"})


def test_group_labels() -> None:
    assert group_labels(LABELS, ["site", "alertname"]) == {"alertname": "LinkDown", "site": "sjc"}
    assert group_labels(LABELS, ["..."]) == dict(sorted(LABELS.items()))
    assert group_labels(LABELS, ["rack"]) == {"rack": ""}
    assert group_labels(LABELS, []) == {}
