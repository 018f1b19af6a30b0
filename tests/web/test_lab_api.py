"""The lab endpoints against a real lab: an in-process Lab behind its real control channel on a loopback socket."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fabric_ops.lab.api import Lab
from fabric_ops.lab.control import ControlServer, control_file, write_private_json
from fabric_ops.lab.synthetic import clos
from fabric_ops.web.models import AuditEntry

pytestmark = pytest.mark.timeout(60)

CONTROL_HOST = "127.17.0.1"


@pytest.fixture
def running_lab(settings, tmp_path) -> Iterator[Lab]:
    """A two-leaf lab (no switch front ends: the API only talks to the control channel) announced in var/lab."""
    settings.VAR_DIR = tmp_path
    lab = Lab.start(clos(leaves=2, spines=2, base_address="127.17.1.1"), serve=False, thread=False)
    server = ControlServer(lab, on_shutdown=lambda: None, host=CONTROL_HOST).start()
    write_private_json(control_file(), {"url": server.url, "token": server.token, "pid": 0})
    try:
        yield lab
    finally:
        server.stop()
        lab.stop()


def uplink(lab: Lab) -> str:
    leaf = lab.switches["leaf1"]
    name = next(n for n, i in leaf.interfaces.items() if i.kind == "fabric")
    return f"leaf1:{name}"


def test_status_inject_clear(clients, db, running_lab) -> None:
    status = clients["viewer"].get("/api/lab/")
    assert status.status_code == 200, status.content
    assert status.json()["switches"] == 4
    assert status.json()["faults"] == []

    target = uplink(running_lab)
    assert clients["viewer"].post("/api/lab/inject/", {"kind": "link-down", "target": target}).status_code == 403
    injected = clients["operator"].post(
        "/api/lab/inject/", {"kind": "link-down", "target": target, "duration": 30}, format="json"
    )
    assert injected.status_code == 201, injected.content
    fault = injected.json()
    assert (fault["kind"], fault["active"]) == ("link-down", True)
    assert [r["id"] for r in running_lab.status()["faults"]] == [fault["id"]], "the fault reached the lab"

    entry = AuditEntry.objects.get(action="inject")
    assert (entry.actor, entry.object_type, entry.object_id) == ("operator", "lab.fault", fault["id"])
    assert entry.changes["target"] == [None, target]

    cleared = clients["operator"].post("/api/lab/clear/", {"id": fault["id"]}, format="json")
    assert cleared.status_code == 200, cleared.content
    assert [r["id"] for r in cleared.json()] == [fault["id"]]
    assert not any(r["active"] for r in running_lab.status()["faults"])
    assert AuditEntry.objects.filter(action="clear", object_id=fault["id"]).count() == 1


def test_clear_all(clients, db, running_lab) -> None:
    for kind in ("link-down", "crc-errors"):
        assert clients["operator"].post(
            "/api/lab/inject/", {"kind": kind, "target": uplink(running_lab)}, format="json"
        ).status_code == 201  # fmt: skip
    cleared = clients["operator"].post("/api/lab/clear/", {"all": True}, format="json")
    assert cleared.status_code == 200
    assert len(cleared.json()) == 2
    assert AuditEntry.objects.filter(action="clear").count() == 2


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ({"kind": "meteor-strike", "target": "leaf1"}, "unknown fault kind"),
        ({"kind": "link-down", "target": "leaf9:Ethernet1/1"}, "leaf9"),
        ({"kind": "link-down"}, "required"),
    ],
)
def test_lab_refusals_are_400(clients, db, running_lab, body, text) -> None:
    answer = clients["operator"].post("/api/lab/inject/", body, format="json")
    assert answer.status_code == 400
    assert text in answer.content.decode()
    assert AuditEntry.objects.count() == 0


def test_clear_needs_an_id_or_all(clients, db, running_lab) -> None:
    assert clients["operator"].post("/api/lab/clear/", {}, format="json").status_code == 400
    assert clients["operator"].post("/api/lab/clear/", {"id": "x", "all": True}, format="json").status_code == 400


def test_503_when_no_lab_runs_or_it_is_gone(clients, db, settings, tmp_path) -> None:
    settings.VAR_DIR = tmp_path
    answer = clients["viewer"].get("/api/lab/")
    assert answer.status_code == 503
    assert "no lab is running" in answer.json()["detail"]
    # A control file left by a lab that died: nothing listens on its port any more.
    write_private_json(control_file(), {"url": f"http://{CONTROL_HOST}:1", "token": "stale"})
    answer = clients["operator"].post("/api/lab/inject/", {"kind": "link-down", "target": "x"}, format="json")
    assert answer.status_code == 503
    assert "no lab answering" in answer.json()["detail"]
    assert "stale" not in answer.content.decode(), "the lab token is never echoed"
