"""The UI in a real browser: Debian's Chromium driven by Playwright for Python against Django's live server.

The lab fabric (inventory/lab.yml) is imported; users log in through the login form. A lab (built from the source
of truth, physics only: no protocol front ends are needed by the pages) publishes its control channel the way
`manage.py lab up` does. Screenshots land in test-artifacts/ (gitignored), kept whether the test passes or not.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.db.models import Q

from fabric_ops.lab.api import Lab
from fabric_ops.lab.control import ControlServer, LabClient, control_file, write_private_json
from fabric_ops.topology.inventory import import_inventory
from fabric_ops.topology.models import Device, Link
from fabric_ops.web.roles import assign_role, sync_roles

playwright_sync = pytest.importorskip("playwright.sync_api", reason="pip install -r requirements.txt")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]  # fmt: skip
ARTIFACTS = Path(django_settings.BASE_DIR) / "test-artifacts"
LAB_INVENTORY = Path(django_settings.INVENTORY_DIR) / "lab.yml"
PASSWORD = "browser-pw-0123"


@pytest.fixture(scope="module")
def async_unsafe_allowed() -> Iterator[None]:
    """Playwright's sync API keeps an event loop running in this thread, which Django's ORM takes for async code.

    The ORM calls these tests make between browser steps are ordinary synchronous calls, so allow them for this
    module only (the variable must not leak: `check --deploy` rightly rejects it).
    """
    old = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        yield
    finally:
        if old is None:
            del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = old


@pytest.fixture(scope="module")
def browser(async_unsafe_allowed) -> Iterator:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run `make chromium` (apt-get install -y chromium)")
    vendor = Path(django_settings.BASE_DIR) / "fabric_ops/web/static/web/vendor"
    missing = [name for name in ("cytoscape.min.js", "htmx.min.js") if not (vendor / name).exists()]
    if missing:
        pytest.fail(f"{vendor}: {', '.join(missing)} missing: run `make web-assets` (npm ci + npm run vendor)")
    ARTIFACTS.mkdir(exist_ok=True)
    with playwright_sync.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def lab_fabric(transactional_db) -> None:
    import_inventory(LAB_INVENTORY)
    sync_roles()
    for name, role in (("viewer", "viewer"), ("operator", "operator")):
        user = get_user_model().objects.create_user(name, password=PASSWORD)
        assign_role(user, role)


@pytest.fixture
def page(browser) -> Iterator:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15000)
    try:
        yield page
    finally:
        context.close()


def log_in(page, live_server, username: str) -> None:
    page.goto(f"{live_server.url}/")
    assert "/accounts/login/" in page.url  # login required
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#who")
    assert username in page.inner_text("#who")


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@pytest.mark.timeout(120)
def test_topology_of_the_lab_fabric_renders_every_switch_and_follows_link_state(page, live_server, lab_fabric):
    log_in(page, live_server, "viewer")
    shot(page, "overview-viewer")
    page.goto(f"{live_server.url}/topology/sjc-ai/")
    page.wait_for_selector("#cy[data-rendered='1']")
    own = Device.objects.filter(fabric__name="sjc-ai").count()
    links = Link.objects.filter(
        Q(a_interface__device__fabric__name="sjc-ai") | Q(b_interface__device__fabric__name="sjc-ai")
    ).distinct()
    ends = set()
    for a, b in links.values_list("a_interface__device_id", "b_interface__device_id"):
        ends.update((a, b))
    external = Device.objects.filter(id__in=ends).exclude(fabric__name="sjc-ai").count()
    counts = page.evaluate(
        "() => ({nodes: window.fabricTopology.cy.nodes().length, edges: window.fabricTopology.cy.edges().length,"
        " ms: window.fabricTopology.renderedMs})"
    )
    assert counts["nodes"] == own + external and own == 12 and external > 0  # DCI far ends are drawn too
    assert counts["edges"] == links.count()
    shot(page, "topology-sjc-ai")

    # Filters hide what does not match (role=spine keeps the spines and the other fabrics' DCI ends).
    page.select_option("#f-role", "spine")
    visible_roles = "() => window.fabricTopology.cy.nodes().filter(n => !n.hasClass('hidden')).map(n => n.data('role'))"
    assert set(page.evaluate(visible_roles)) == {"spine"}
    page.wait_for_function("() => window.fabricTopology.cy.nodes(':visible').length === 4")
    page.select_option("#f-role", "")

    # A link drained in the source of truth (what remediation does) changes colour without a reload.
    link = links.filter(kind="fabric").order_by("id").first()
    edge = f"window.fabricTopology.cy.getElementById('e{link.pk}')"
    assert page.evaluate(f"() => {edge}.data('state')") == "up"
    before_colour = page.evaluate(f"() => {edge}.style('line-color')")
    updates = page.evaluate("() => window.fabricTopology.updates")
    Link.objects.filter(pk=link.pk).update(state="drained")
    page.wait_for_function(f"() => {edge}.data('state') === 'drained'", timeout=15000)
    assert page.evaluate("() => window.fabricTopology.updates") > updates
    after_colour = page.evaluate(f"() => {edge}.style('line-color')")
    assert after_colour != before_colour
    shot(page, "topology-sjc-ai-drained")


@pytest.mark.timeout(120)
def test_viewer_cannot_press_operator_buttons(page, live_server, lab_fabric):
    log_in(page, live_server, "viewer")
    page.goto(f"{live_server.url}/jobs/")
    assert page.locator("#new-job").count() == 0
    answer = page.goto(f"{live_server.url}/jobs/new/")
    assert answer.status == 403
    # A forged form post (the viewer's own session and CSRF token) is refused server-side too.
    page.goto(f"{live_server.url}/planner/")
    status = page.evaluate(
        """async () => {
            const token = document.querySelector('input[name=csrfmiddlewaretoken]').value;
            const body = new URLSearchParams(
                {csrfmiddlewaretoken: token, target: 'fabric', fabric: 'sjc-ai', dry_run: 'on'});
            const r = await fetch('/jobs/new/', {method: 'POST', body, credentials: 'same-origin'});
            return r.status;
        }"""
    )
    assert status == 403
    shot(page, "jobs-viewer")


@pytest.fixture
def running_lab(lab_fabric, settings, tmp_path) -> Iterator[LabClient]:
    settings.VAR_DIR = tmp_path
    lab = Lab.start(["sjc-ai", "lax-ai", "dci"], serve=False, frontends=())
    control = ControlServer(lab, on_shutdown=lambda: None).start()
    write_private_json(control_file(), {"url": control.url, "token": control.token, "pid": os.getpid()})
    try:
        yield LabClient(control.url, control.token, timeout=5)
    finally:
        control.stop()
        lab.stop()


@pytest.mark.timeout(120)
def test_operator_injects_a_lab_fault_and_the_page_follows_live(page, live_server, running_lab):
    log_in(page, live_server, "operator")
    page.click("#nav-lab")  # shown only while a lab runs
    page.wait_for_selector("#inject-form")
    page.select_option("#inject-kind", "link-down")
    page.fill("#inject-target", "sjc-leaf1:Ethernet5/1")
    page.click("#inject")
    page.wait_for_selector("#active-faults tr[data-fault]")
    assert "link-down" in page.inner_text("#active-faults")
    shot(page, "lab-fault-injected")

    # A fault injected elsewhere (CLI, another operator) appears without a reload (htmx polling).
    marker = page.evaluate("() => { window.__noReload = 1; return 1; }")
    fault = running_lab.inject("crc-errors", "sjc-spine1:400GE1/0/2", rate=0.01)
    page.wait_for_selector(f"#active-faults tr[data-fault='{fault['id']}']", timeout=10000)
    assert page.evaluate("() => window.__noReload") == marker
    assert page.inner_text("#active-count") == "2"
    # The link-down fault took the link down in the lab's physics; the polled figures show it.
    page.wait_for_function("() => parseInt(document.querySelector('#lab-links-down').textContent) >= 1")

    page.click("#clear-all")
    page.wait_for_selector("text=No active fault.")
    assert not [f for f in running_lab.faults() if not f.get("cleared_at")]
    shot(page, "lab-cleared")
    started = time.monotonic()
    from fabric_ops.web.models import AuditEntry

    assert AuditEntry.objects.filter(action="inject", actor="operator").count() == 1
    assert AuditEntry.objects.filter(action="clear", actor="operator").count() == 2
    assert time.monotonic() - started < 5


@pytest.mark.timeout(120)
def test_job_page_follows_progress_live_and_stops_polling_when_done(page, live_server, lab_fabric):
    from fabric_ops.config.models import DeviceJob, PushJob

    job = PushJob.objects.create(requested_by="operator", status="running", dry_run=True)
    leaves = list(Device.objects.filter(fabric__name="sjc-ai", role="leaf").order_by("hostname")[:3])
    for device in leaves:
        DeviceJob.objects.create(job=job, device=device)
    log_in(page, live_server, "viewer")
    page.goto(f"{live_server.url}/jobs/{job.pk}/")
    page.evaluate("() => { window.__noReload = 1; }")
    assert "0 / 3 done" in page.inner_text("#job-progress")
    # What the worker writes as it goes (fabric_ops.config.push); the page polls every 2 s.
    DeviceJob.objects.filter(job=job, device=leaves[0]).update(status="diffed", diff="+ qos ecn min 150")
    page.wait_for_selector("text=1 / 3 done")
    DeviceJob.objects.filter(job=job).update(status="diffed")
    PushJob.objects.filter(pk=job.pk).update(status="succeeded")
    page.wait_for_selector("#job-status:has-text('Succeeded')")
    assert page.evaluate("() => window.__noReload") == 1
    assert "3 / 3 done" in page.inner_text("#job-progress")
    assert page.get_attribute("#job-progress", "hx-trigger") is None  # finished: no more polling
    shot(page, "job-done")


@pytest.mark.timeout(120)
def test_operator_acknowledges_an_incident_viewer_sees_no_action_button(browser, page, live_server, lab_fabric):
    from fabric_ops.health.models import Alarm, Incident, RemediationRun
    from fabric_ops.web.models import AuditEntry

    link = Link.objects.filter(kind="fabric", a_interface__device__fabric__name="sjc-ai").order_by("id").first()
    incident = Incident.objects.create(
        kind="link-flap", root_key=f"link:{link.pk}", status="needs-human", summary="uplink flapping",
        scope_kind="link", fabric="sjc-ai", device=link.a_interface.device.hostname, link_id=link.pk,
        reason="playbook link-flap awaits approval", impact={"capacity_lost_gbps": 400, "removed_link_ids": [link.pk]},
    )  # fmt: skip
    Alarm.objects.create(incident=incident, kind="link-flap", device=incident.device, subject="Ethernet1/1",
                         message="5 transitions in 60 s", seen_at=incident.detected_at)  # fmt: skip
    RemediationRun.objects.create(incident=incident, playbook="link-flap", mode="approve", idempotency_key="b1",
                                  target_key=incident.root_key, status="awaiting-approval")  # fmt: skip
    url = f"{live_server.url}/incidents/{incident.pk}/"

    log_in(page, live_server, "viewer")
    page.goto(url)
    page.wait_for_selector("#incident-live")
    assert "5 transitions in 60 s" in page.inner_text("#evidence")
    for selector in ("#ack", "#resolve-form", ".approve-run", ".reject-run", ".rollback-run"):
        assert page.locator(selector).count() == 0, selector
    shot(page, "incident-viewer")

    context = browser.new_context(viewport={"width": 1400, "height": 900})
    operator = context.new_page()
    operator.set_default_timeout(15000)
    try:
        log_in(operator, live_server, "operator")
        operator.goto(url)
        assert operator.locator(".approve-run").count() == 1 and operator.locator("#resolve-form").count() == 1
        operator.click("#ack")
        operator.wait_for_selector("#incident-ack:has-text('by operator')")
        assert operator.locator("#ack").count() == 0
        shot(operator, "incident-acknowledged")
        # Polling pauses while the resolve form is open: a note being typed is not wiped by a refresh.
        operator.click("#resolve-open")
        operator.fill("#resolve-form input[name=note]", "reseated the optic")
        Incident.objects.filter(pk=incident.pk).update(reason="still flapping")
        operator.wait_for_timeout(7000)  # more than one 5 s poll
        assert operator.input_value("#resolve-form input[name=note]") == "reseated the optic"
        assert "still flapping" not in operator.inner_text("#incident-live")
    finally:
        context.close()
    incident.refresh_from_db()
    assert incident.acknowledged_by == "operator"
    assert AuditEntry.objects.filter(action="acknowledge", actor="operator", source="web").count() == 1

    # The viewer's page follows without a reload (htmx polling of the live fragment).
    page.evaluate("() => { window.__noReload = 1; }")
    page.wait_for_selector("#incident-ack:has-text('by operator')", timeout=15000)
    Incident.objects.filter(pk=incident.pk).update(status="mitigating")
    page.wait_for_selector("#incident-status:has-text('Mitigating')", timeout=15000)
    assert page.evaluate("() => window.__noReload") == 1
    shot(page, "incident-viewer-live")
    page.click("#nav-alerting")  # the open alert groups (a viewer: no Acknowledge button)
    page.wait_for_selector("#alert-groups")
    assert page.locator("button.ack-group").count() == 0
    shot(page, "alerting-groups")
    page.click("text=Routes")
    page.wait_for_selector("h2:has-text('Route tree')")  # (the default routes exist unless a flush removed them)
    shot(page, "alerting-routes")
