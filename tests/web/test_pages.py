"""The HTML pages through Django's test client: login, permissions (buttons hidden and POSTs refused), CSRF,
audit records, and each page's content on a small two-site fabric. Real Redis (broker DB 11), real influxd and a
real lab control channel where a page reads them; listeners on this suite's block 127.19.0.0/16."""

from __future__ import annotations

import re
import shutil
import time
import urllib.request
from collections.abc import Iterator

import pytest
from django.test import Client
from django.urls import reverse

from fabric_ops.config.models import ComplianceResult, DeviceJob, PushJob
from fabric_ops.config.models.jobs import JobStatus
from fabric_ops.health.models import Alarm, Incident
from fabric_ops.lab.api import Lab
from fabric_ops.lab.control import ControlServer, control_file, write_private_json
from fabric_ops.lab.synthetic import clos
from fabric_ops.telemetry.influxd import LocalInfluxd
from fabric_ops.topology.models import Device, Fabric, Link
from fabric_ops.web.models import AuditEntry
from fabric_ops.web.views import telemetry as ui_telemetry

from .conftest import login

pytestmark = pytest.mark.django_db
HOST = "127.19.0.1"
DEAD_INFLUX = "http://127.19.0.2:9"  # nothing listens there: "telemetry unavailable"


@pytest.fixture(autouse=True)
def no_influx(settings):
    """By default InfluxDB does not answer (each test that wants telemetry starts a real one)."""
    settings.FABRIC_OPS_INFLUX_URL = DEAD_INFLUX
    ui_telemetry.reset_backoff()
    yield
    ui_telemetry.reset_backoff()


@pytest.fixture
def pages(fabric) -> dict[str, str]:
    """Every GET page and fragment, by name, with real objects of the two-site fabric."""
    leaf = fabric.devices["dx-a-leaf1"]
    job = PushJob.objects.get()
    link = (
        Link.objects.filter(a_interface__device=leaf).first() or Link.objects.filter(b_interface__device=leaf).first()
    )
    incident = Incident.objects.create(kind="link-down", root_key=f"link:{link.pk}", summary="link down",
                                       scope_kind="link", fabric="dx-fab-a", link_id=link.pk)  # fmt: skip
    Alarm.objects.create(incident=incident, kind="link-down", device=leaf.hostname, message="oper down",
                         seen_at=incident.detected_at)  # fmt: skip
    iface = leaf.interfaces.order_by("name").first().name
    return {
        "overview": reverse("web:overview"),
        "overview-health": reverse("web:overview-health"),
        "overview-top-ports": reverse("web:overview-top-ports"),
        "overview-capacity": reverse("web:overview-capacity"),
        "topology-index": reverse("web:topology-index"),
        "topology": reverse("web:topology", args=["dx-fab-a"]),
        "topology-graph": reverse("web:topology-graph", args=["dx-fab-a"]),
        "topology-state": reverse("web:topology-state", args=["dx-fab-a"]),
        "device": reverse("web:device", args=[leaf.hostname]),
        "device-charts": reverse("web:device-charts", args=[leaf.hostname]) + f"?interface={iface}",
        "link": reverse("web:link", args=[link.pk]),
        "jobs": reverse("web:jobs"),
        "job": reverse("web:job", args=[job.pk]),
        "job-progress": reverse("web:job-progress", args=[job.pk]),
        "planner": reverse("web:planner") + "?bom=dx-fab-a",
        "lab": reverse("web:lab"),
        "lab-faults": reverse("web:lab-faults"),
        "incidents": reverse("web:incidents"),
        "incident": reverse("web:incident", args=[incident.pk]),
        "incident-live": reverse("web:incident-live", args=[incident.pk]),
        "alerting-rules": reverse("web:alerting-rules"),
        "alerting-groups": reverse("web:alerting-groups"),
        "alerting-routes": reverse("web:alerting-routes"),
        "alerting-receivers": reverse("web:alerting-receivers"),
        "alerting-silences": reverse("web:alerting-silences"),
        "alerting-deliveries": reverse("web:alerting-deliveries") + "?status=sent",
    }


@pytest.mark.timeout(60)
def test_every_page_needs_a_login(pages):
    client = Client()
    for name, url in pages.items():
        answer = client.get(url)
        assert answer.status_code == 302, name
        assert answer["Location"].startswith(reverse("login") + "?next="), name


@pytest.mark.timeout(60)
def test_viewer_sees_every_page(users, pages, broker):
    client = login(users, "viewer")
    for name, url in pages.items():
        answer = client.get(url)
        assert answer.status_code == 200, (name, answer.status_code)


@pytest.mark.timeout(60)
def test_user_without_a_role_is_refused(users, pages):
    client = login(users, "nobody")
    for name, url in pages.items():
        assert client.get(url).status_code == 403, name


OPERATOR_MARKERS = ('id="new-job"', 'id="inject-form"', 'id="approve"', 'class="clear-fault"')


def test_viewer_sees_no_operator_button_and_posts_are_refused(users, fabric, lab_running):
    job = PushJob.objects.create(requested_by="operator", status=JobStatus.AWAITING_APPROVAL, require_approval=True)
    DeviceJob.objects.create(job=job, device=fabric.devices["dx-a-leaf1"])
    lab_running.inject("link-down", lab_running.link_target)
    viewer, operator2 = login(users, "viewer"), login(users, "operator2")
    html = {
        "jobs": (reverse("web:jobs"), 'id="new-job"'),
        "job": (reverse("web:job", args=[job.pk]), 'id="approve"'),
        "lab": (reverse("web:lab"), 'id="inject-form"'),
        "lab-faults": (reverse("web:lab-faults"), 'class="clear-fault"'),
    }
    for name, (url, marker) in html.items():
        assert marker not in viewer.get(url).content.decode(), name
        assert marker in operator2.get(url).content.decode(), name
    before = AuditEntry.objects.count()
    posts = [
        (reverse("web:job-create"), {"target": "fabric", "fabric": "dx-fab-a", "dry_run": "on"}),
        (reverse("web:job-approve", args=[job.pk]), {}),
        (reverse("web:lab-inject"), {"kind": "link-down", "target": lab_running.link_target}),
        (reverse("web:lab-clear"), {"all": "1"}),
    ]
    for url, data in posts:
        assert viewer.post(url, data).status_code == 403, url
    assert viewer.get(reverse("web:job-create")).status_code == 403
    assert AuditEntry.objects.count() == before
    assert PushJob.objects.count() == 2  # the fixture's and this test's; nothing created
    job.refresh_from_db()
    assert job.status == JobStatus.AWAITING_APPROVAL
    assert len([f for f in lab_running.client.faults() if not f.get("cleared_at")]) == 1


def csrf_client(users: dict, name: str) -> tuple[Client, str]:
    client = login(users, name, enforce_csrf_checks=True)
    page = client.get(reverse("web:job-create")).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    return client, token


def test_csrf_is_enforced_on_page_forms(users, fabric, broker):
    client, token = csrf_client(users, "operator")
    data = {"target": "devices", "devices": "dx-a-leaf1", "dry_run": "on", "reason": "csrf"}
    assert client.post(reverse("web:job-create"), data).status_code == 403
    assert not PushJob.objects.filter(reason="csrf").exists()
    answer = client.post(reverse("web:job-create"), {**data, "csrfmiddlewaretoken": token})
    assert answer.status_code == 302
    assert PushJob.objects.filter(reason="csrf").count() == 1


def test_operator_creates_a_dry_run_push_and_it_is_audited_and_queued(
    users, fabric, broker, django_capture_on_commit_callbacks
):
    client = login(users, "operator")
    form = client.get(reverse("web:job-create")).content.decode()
    assert 'name="csrfmiddlewaretoken"' in form
    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post(reverse("web:job-create"), {"target": "fabric", "fabric": "dx-fab-a", "roles": ["leaf"],
                                                         "dry_run": "on", "reason": "from the page"})  # fmt: skip
    assert answer.status_code == 302
    job = PushJob.objects.get(reason="from the page")
    assert answer["Location"] == reverse("web:job", args=[job.pk])
    assert job.dry_run and job.requested_by == "operator" and job.user == users["operator"]
    leaves = set(
        Device.objects.filter(fabric__name="dx-fab-a", role="leaf", lifecycle="active").values_list(
            "hostname", flat=True
        )
    )
    assert set(job.devices.values_list("device__hostname", flat=True)) == leaves
    entry = AuditEntry.objects.get(action="create", object_type="fabricconfig.pushjob", object_id=str(job.pk))
    assert entry.user == users["operator"] and entry.changes["devices"][1] == sorted(leaves)
    assert entry.source == "web", "made from a page"
    assert broker.llen("celery") == 1  # queued on the real broker, like the API does
    page = client.get(answer["Location"]).content.decode()
    assert 'id="job-progress"' in page and "hx-trigger" in page  # pending: the page polls for progress


def test_job_form_errors_name_the_problem(users, fabric):
    client = login(users, "operator")
    answer = client.post(reverse("web:job-create"), {"target": "devices", "devices": "nope-1 dx-a-leaf1"})
    assert answer.status_code == 400
    assert "unknown device(s): nope-1" in answer.content.decode()
    assert PushJob.objects.count() == 1  # only the fixture's


def test_approval_by_another_operator_only(users, fabric, broker, django_capture_on_commit_callbacks):
    job = PushJob.objects.create(requested_by="operator", user=users["operator"], require_approval=True,
                                 status=JobStatus.AWAITING_APPROVAL)  # fmt: skip
    DeviceJob.objects.create(job=job, device=fabric.devices["dx-a-leaf1"])
    url = reverse("web:job-approve", args=[job.pk])
    assert 'id="approve"' not in login(users, "operator").get(reverse("web:job", args=[job.pk])).content.decode()
    assert login(users, "operator").post(url).status_code == 403  # the requester
    with django_capture_on_commit_callbacks(execute=True):
        answer = login(users, "operator2").post(url)
    assert answer.status_code == 302
    job.refresh_from_db()
    assert job.status == JobStatus.PENDING and job.approved_by == "operator2"
    entry = AuditEntry.objects.get(action="approve", object_id=str(job.pk))
    assert entry.actor == "operator2" and entry.changes["status"] == ["awaiting-approval", "pending"]
    assert entry.source == "web"
    assert broker.llen("celery") == 1
    again = login(users, "operator2").post(url, follow=True)
    assert "not awaiting approval" in again.content.decode()


def test_job_detail_shows_redacted_diffs_and_stops_polling_when_done(users, fabric):
    job = PushJob.objects.get()  # succeeded, with a device diff carrying a secret hash
    page = login(users, "viewer").get(reverse("web:job", args=[job.pk])).content.decode()
    assert "dx-a-leaf1" in page and "Committed and confirmed" in page
    assert "$6$abc" not in page
    assert "hx-trigger" not in page.split('id="job-progress"')[1].split(">")[0]


def test_overview_counts_and_explicit_telemetry_reason(users, fabric):
    Link.objects.filter(pk=Link.objects.filter(a_interface__device__fabric__name="dx-fab-a").first().pk).update(
        state="down"
    )
    client = login(users, "viewer")
    page = client.get(reverse("web:overview")).content.decode()
    row = page.split('data-fabric="dx-fab-a"')[1].split("</tr>")[0]
    devices = Device.objects.filter(fabric__name="dx-fab-a").count()
    assert f'<td class="num">{devices}</td>' in row
    assert '<td class="num bad">1</td>' in row
    assert "compliant 1" in row
    fragment = client.get(reverse("web:overview-top-ports")).content.decode()
    assert "telemetry unavailable:" in fragment and "127.19.0.2" in fragment


def test_topology_graph_has_every_switch_and_a_preset_layout(users, fabric):
    client = login(users, "viewer")
    graph = client.get(reverse("web:topology-graph", args=["dx-fab-a"])).json()
    own = Device.objects.filter(fabric__name="dx-fab-a").count()
    assert graph["counts"]["nodes"] == len(graph["nodes"]) == len(graph["positions"])
    assert graph["counts"]["nodes"] - graph["counts"]["external_nodes"] == own
    role = graph["node_fields"].index("role")
    y_of = {}
    for row, (_, y) in zip(graph["nodes"], graph["positions"], strict=True):
        y_of.setdefault(row[role], set()).add(y)
    assert max(y_of["spine"]) < min(y_of["leaf"])  # spines drawn above leaves
    assert len({tuple(p) for p in graph["positions"]}) == len(graph["positions"])  # no two nodes on one spot
    with_hosts = client.get(reverse("web:topology-graph", args=["dx-fab-a"]) + "?hosts=1").json()
    assert with_hosts["counts"]["hosts"] == fabric.fabric.gpu_hosts.count() > 0
    assert len(with_hosts["nodes"]) == len(graph["nodes"]) + with_hosts["counts"]["hosts"]
    state = client.get(reverse("web:topology-state", args=["dx-fab-a"])).json()
    assert len(state["edges"]) == len(graph["edges"])
    assert state["telemetry"] and all(e[3] is None for e in state["edges"])  # no InfluxDB: no utilisation


def test_planner_what_if_and_bill_of_materials(users, fabric):
    client = login(users, "viewer")
    spine = Device.objects.filter(fabric__name="dx-fab-a", role="spine").order_by("hostname").first()
    answer = client.post(reverse("web:planner"), {"fabric": "dx-fab-a", "devices": spine.hostname, "threshold": "0.75"})
    page = answer.content.decode()
    assert answer.status_code == 200 and 'id="verdict"' in page
    assert "Leaves affected" in page
    bad = client.post(reverse("web:planner"), {"fabric": "dx-fab-a", "devices": "ghost-9"})
    assert bad.status_code == 400 and "ghost-9" in bad.content.decode()
    empty = client.post(reverse("web:planner"), {"fabric": "dx-fab-a"})
    assert empty.status_code == 400 and "empty request" in empty.content.decode()
    bom = client.get(reverse("web:planner") + "?bom=dx-fab-a").content.decode()
    assert 'id="bom"' in bom and "total" in bom


def test_device_page_shows_interfaces_compliance_and_jobs(users, fabric):
    leaf = fabric.devices["dx-a-leaf1"]
    ComplianceResult.objects.create(device=leaf, compliant=False, diff="- qos ecn\n+ qos ecn min 150")
    page = login(users, "viewer").get(reverse("web:device", args=[leaf.hostname])).content.decode()
    assert all(i.name in page for i in leaf.interfaces.all())
    assert "+ qos ecn min 150" in page and "drift" in page
    assert "telemetry unavailable:" in page


# -- real InfluxDB ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def influxd(tmp_path_factory) -> Iterator[LocalInfluxd]:
    if shutil.which("influxd") is None:
        pytest.fail("influxd is not installed: run `make influxdb`")
    server = LocalInfluxd(tmp_path_factory.mktemp("influxd"), host=HOST)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def write_lines(server: LocalInfluxd, db: str, lines: list[str]) -> None:
    request = urllib.request.Request(f"{server.url}/write?db={db}&precision=s", data="\n".join(lines).encode())
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 204


@pytest.mark.timeout(60)
def test_top_ports_and_charts_from_a_real_influxdb(users, fabric, influxd, settings):
    db = f"ui_{int(time.time() * 1000)}"
    influxd.create_database(db)
    settings.FABRIC_OPS_INFLUX_URL = influxd.url
    settings.FABRIC_OPS_INFLUX_BUCKET = f"{db}/autogen"
    now = int(time.time())
    leaf = fabric.devices["dx-a-leaf1"]
    iface = leaf.interfaces.order_by("name").first().name
    lines = []
    for k in range(10):
        ts = now - 60 + k * 6
        lines.append(f"queue,device={leaf.hostname},interface={iface},queue=3 ecn_marked_pps={1000 + k} {ts}")
        lines.append(f"queue,device=dx-a-leaf2,interface=Ethernet1,queue=3 ecn_marked_pps=5 {ts}")
        lines.append(f"pfc,device={leaf.hostname},interface={iface},priority=3 rx_pause_ps=42,tx_pause_ps=1 {ts}")
        lines.append(
            f"interface,device={leaf.hostname},interface={iface} "
            f"in_bps={k}e9,out_bps=2e9,in_errors_ps=0.5,oper_up=true {ts}"
        )
    write_lines(influxd, db, lines)
    client = login(users, "viewer")
    fragment = client.get(reverse("web:overview-top-ports")).content.decode()
    assert "telemetry unavailable" not in fragment
    ecn = fragment.split("ECN marks/s")[1].split("</table>")[0]
    assert ecn.index(leaf.hostname) < ecn.index("dx-a-leaf2")  # ranked
    assert "1004.50" in ecn  # mean of 1000..1009
    charts = client.get(reverse("web:device-charts", args=[leaf.hostname]) + f"?interface={iface}").json()
    assert charts["reason"] == ""
    by_key = {c["key"]: c for c in charts["charts"]}
    assert any(v == 42 for _, v in by_key["pfc_rx"]["points"])
    assert 7e9 <= max(v or 0 for _, v in by_key["util_in"]["points"]) <= 9e9  # 30 s means of 0..9 Gb/s
    page = client.get(reverse("web:device", args=[leaf.hostname])).content.decode()
    assert "telemetry unavailable" not in page and '<span class="ok">up</span>' in page
    state = client.get(reverse("web:topology-state", args=["dx-fab-a"])).json()
    assert state["telemetry"] == "" and any(e[3] is not None for e in state["edges"])


# -- a real lab behind its control channel -------------------------------------------------------------------
class RunningLab:
    def __init__(self, lab: Lab, control: ControlServer, link_target: str):
        from fabric_ops.lab.control import LabClient

        self.lab, self.control, self.link_target = lab, control, link_target
        self.client = LabClient(control.url, control.token, timeout=5)

    def inject(self, kind: str, target: str) -> dict:
        return self.client.inject(kind, target)


@pytest.fixture
def lab_running(settings, tmp_path) -> Iterator[RunningLab]:
    """A small synthetic lab (no protocol front ends) with its control channel, published like `lab up` does."""
    settings.VAR_DIR = tmp_path
    lab = Lab.start(clos(leaves=2, spines=2, hosts_per_leaf=1), serve=False, frontends=())
    control = ControlServer(lab, on_shutdown=lambda: None, host="127.0.0.1").start()
    write_private_json(control_file(), {"url": control.url, "token": control.token, "pid": 0})
    status = lab.status()
    assert status["switches"] == 4
    leaf = sorted(lab.switches)[0]
    port = next(i for i in lab.switches[leaf].interfaces.values() if i.kind == "fabric")
    try:
        yield RunningLab(lab, control, f"{leaf}:{port.name}")
    finally:
        control.stop()
        lab.stop()


def test_lab_page_inject_and_clear_are_audited(users, lab_running):
    operator = login(users, "operator")
    page = operator.get(reverse("web:lab")).content.decode()
    assert 'id="inject-form"' in page and "No active fault." in page
    assert 'id="nav-lab"' in page
    answer = operator.post(
        reverse("web:lab-inject"), {"kind": "link-down", "target": lab_running.link_target, "duration": ""}
    )
    assert answer.status_code == 302
    active = [f for f in lab_running.client.faults() if not f.get("cleared_at")]
    assert [f["kind"] for f in active] == ["link-down"]  # the lab normalises the target to link:<id>
    entry = AuditEntry.objects.get(action="inject")
    assert entry.object_type == "lab.fault" and entry.object_id == active[0]["id"] and entry.actor == "operator"
    assert entry.source == "web"
    fragment = operator.get(reverse("web:lab-faults")).content.decode()
    assert f'data-fault="{active[0]["id"]}"' in fragment
    bad = operator.post(
        reverse("web:lab-inject"), {"kind": "no-such-fault", "target": lab_running.link_target}, follow=True
    )
    assert "unknown fault kind" in bad.content.decode()
    assert operator.post(reverse("web:lab-clear"), {"id": active[0]["id"]}).status_code == 302
    assert not [f for f in lab_running.client.faults() if not f.get("cleared_at")]
    assert AuditEntry.objects.filter(action="clear", object_id=active[0]["id"]).count() == 1


def test_lab_page_says_when_no_lab_runs(users, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    page = login(users, "viewer").get(reverse("web:lab")).content.decode()
    assert 'id="lab-unavailable"' in page and "no lab is running" in page
    assert 'id="nav-lab"' not in page and 'id="inject-form"' not in page


def test_fabric_names_in_urls_404(users):
    assert login(users, "viewer").get(reverse("web:topology", args=["nope"])).status_code == 404
    assert Fabric.objects.count() == 0


def test_large_fabric_mode_sends_only_links_that_need_attention(users, fabric):
    client = login(users, "viewer")
    url = reverse("web:topology-graph", args=["dx-fab-a"])
    full = client.get(url + "?links=all").json()
    assert full["links"] == "all" and full["counts"]["edges_hidden"] == 0
    fabric_link = (
        Link.objects.filter(a_interface__device__fabric__name="dx-fab-a", kind="fabric").order_by("id").first()
    )
    Link.objects.filter(pk=fabric_link.pk).update(state="down")
    problems = client.get(url + "?links=problems").json()
    drawn = {e[0]: e for e in problems["edges"]}
    dci = {e[0] for e in full["edges"] if e[3] == "dci"}
    assert set(drawn) == dci | {fabric_link.pk}
    assert drawn[fabric_link.pk][5] == "down"
    assert problems["counts"]["edges_total"] == len(full["edges"])
    assert problems["counts"]["edges_hidden"] == len(full["edges"]) - len(drawn)
    assert len(problems["nodes"]) == len(full["nodes"])  # every switch is still drawn
    with_hosts = client.get(url + "?links=problems&hosts=1").json()
    assert with_hosts["counts"]["hosts"] > 0 and {e[0] for e in with_hosts["edges"]} == set(drawn)  # healthy NICs too
    state = client.get(reverse("web:topology-state", args=["dx-fab-a"]) + "?links=problems").json()
    assert {e[0] for e in state["edges"]} == set(drawn) and state["links"] == "problems"


def test_drain_and_undrain_from_the_pages_are_operator_only_and_audited(users, fabric):
    link = Link.objects.filter(a_interface__device__fabric__name="dx-fab-a", kind="fabric").order_by("id").first()
    leaf = fabric.devices["dx-a-leaf1"]
    viewer, operator = login(users, "viewer"), login(users, "operator")
    assert 'id="drain"' not in viewer.get(reverse("web:link", args=[link.pk])).content.decode()
    assert 'class="lifecycle-action"' not in viewer.get(reverse("web:device", args=[leaf.hostname])).content.decode()
    assert viewer.post(reverse("web:link-state", args=[link.pk]), {"state": "drained"}).status_code == 403
    assert (
        viewer.post(reverse("web:device-lifecycle", args=[leaf.hostname]), {"lifecycle": "drained"}).status_code == 403
    )
    link.refresh_from_db()
    assert link.state == "up" and not AuditEntry.objects.filter(action="update").exists()

    assert 'id="drain"' in operator.get(reverse("web:link", args=[link.pk])).content.decode()
    assert operator.post(reverse("web:link-state", args=[link.pk]), {"state": "drained"}).status_code == 302
    link.refresh_from_db()
    assert link.state == "drained"
    graph = operator.get(reverse("web:topology-graph", args=["dx-fab-a"]) + "?links=all").json()
    assert next(e for e in graph["edges"] if e[0] == link.pk)[5:7] == ["drained", False]
    assert 'id="undrain"' in operator.get(reverse("web:link", args=[link.pk])).content.decode()
    assert operator.post(reverse("web:link-state", args=[link.pk]), {"state": "down"}).status_code == 302  # refused
    link.refresh_from_db()
    assert link.state == "drained"
    operator.post(reverse("web:link-state", args=[link.pk]), {"state": "up"})
    changes = list(
        AuditEntry.objects.filter(object_type="topology.link", object_id=str(link.pk))
        .order_by("id")
        .values_list("changes", flat=True)
    )
    assert changes == [{"state": ["up", "drained"]}, {"state": ["drained", "up"]}]

    assert (
        operator.post(reverse("web:device-lifecycle", args=[leaf.hostname]), {"lifecycle": "drained"}).status_code
        == 302
    )
    leaf.refresh_from_db()
    assert leaf.lifecycle == "drained"
    entry = AuditEntry.objects.get(object_type="topology.device", object_id=str(leaf.pk))
    assert entry.actor == "operator" and entry.changes == {"lifecycle": ["active", "drained"]}
    assert set(AuditEntry.objects.values_list("source", flat=True)) == {"web"}, "page changes say so"
