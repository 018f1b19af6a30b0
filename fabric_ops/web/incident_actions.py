"""What a person may do about an incident, shared by the incident page and the REST API.

Every function checks the state it needs (``ActionRefused``, answered 409 by the API and shown as a message on
the page), changes it in one transaction and writes one audit row with the person and the source (``web`` for
a page, ``api`` for the REST API). Permissions are checked by the callers (``health.change_incident`` for the
incident, ``health.change_remediationrun`` for its runs).

* ``acknowledge`` — the incident is owned by a person; its alert groups stop escalating (one notion with the
  alerting app: :mod:`fabric_ops.alerting.acknowledgement`).
* ``resolve`` — closed by hand with a note; refused while a run acts on it or a mitigation it made is still in
  force (drained links, costed-out BGP sessions, ports with PFC off: roll that back first); a run still waiting for
  approval is rejected with it.
* ``approve`` — a run waiting for approval is executed by a worker (Celery ``web.approve_remediation``, which
  calls ``fabric_ops.health.remediation.approve``): nothing is pushed inside the request.
* ``reject`` — a run waiting for approval is declined (status ``refused``, ``rejected_by``); its playbook
  cools down on the target so the re-evaluation does not ask again at once.
* ``rollback`` — undo a verified mitigation through the restore path (Celery ``web.rollback_remediation``
  calling ``fabric_ops.health.remediation.restore``): links back up and/or ports out of the per-port overrides
  (cost-out, PFC off), push, verify, incident resolved.

Approve and rollback are serialised per run: the run's row is locked (``select_for_update``) while the state is
checked and the audit row written, and the task is sent once that transaction commits (``on_commit``), so a worker
never looks for a row it cannot see. The audit row of a queued approval / rollback is what a second submit finds:
it is refused (409) while that task is waiting for a worker (``FABRIC_OPS_WEB_QUEUED_ACTION_S``, 300 s; after that
the task is taken as lost and the action may be queued again) or while a restore of the run runs. When the broker
does not take the task the change is withdrawn: a ``not-queued`` audit row follows and the caller gets
:class:`NotQueued` (503).

Notes (resolve, reject) are capped at :data:`NOTE_MAX` characters, the same for the API and the page.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from fabric_ops.errors import FabricOpsError
from fabric_ops.health.choices import IncidentStatus, RunStatus
from fabric_ops.health.models import Cooldown, Incident, RemediationRun
from fabric_ops.health.remediation import RestoreInProgress, running_restore, undo_targets

from . import audit
from .models import AuditEntry

logger = logging.getLogger(__name__)

BUSY_RUN_STATUSES = (RunStatus.PENDING, RunStatus.RUNNING, RunStatus.VERIFYING)
DEFAULT_REJECT_COOLDOWN_S = 900.0
# The longest note a person may give a resolve or a reject, for the API's serializers and the page alike.
NOTE_MAX = 1000
NOT_QUEUED = "not-queued"  # audit action: a queued approve / rollback the broker did not take (withdrawn)


class ActionRefused(FabricOpsError):
    """The object is not in a state that allows the action (HTTP 409)."""


class NotQueued(FabricOpsError):
    """The broker did not take the task (HTTP 503); nothing was changed or audited."""


# What a restore gives back, by the key a run's undo records it under (``links``: shut links; the others are
# per-port override lists, ``host:interface``).
IN_FORCE_LABELS = {
    "links": "drained link(s)",
    "bgp_cost_out": "costed-out BGP session(s) on",
    "pfc_disabled_ports": "PFC off on",
}


def in_force(run: RemediationRun) -> dict[str, list[Any]]:
    """What a verified run changed and has not given back (what a rollback through the restore path undoes):
    ``{"links": [3, 4]}`` for a drain, ``{"pfc_disabled_ports": ["leaf1:Ethernet1/1"]}`` for a PFC disable,
    ``{"bgp_cost_out": [...]}`` for a cost-out (both ends). Empty when nothing is in force."""
    if run.status != RunStatus.SUCCEEDED or run.restored_at:
        return {}
    links, ports = undo_targets(run)
    found: dict[str, set[Any]] = {"links": set(links)}
    for host, fields in ports.items():
        for key, names in fields.items():
            found.setdefault(key, set()).update(f"{host}:{name}" for name in names)
    return {key: sorted(values) for key, values in found.items() if values}


def describe(held: dict[str, list[Any]]) -> str:
    return "; ".join(f"{IN_FORCE_LABELS.get(k, k)} {', '.join(map(str, v))}" for k, v in held.items())


def can_roll_back(run: RemediationRun) -> bool:
    return bool(in_force(run)) and run.incident.status != IncidentStatus.MITIGATING


def acknowledge(incident_id: int, user: Any, request: Any = None, *, source: str) -> Incident:
    name = user.get_username()
    with transaction.atomic():
        incident = Incident.objects.select_for_update().get(pk=incident_id)
        if incident.status == IncidentStatus.RESOLVED:
            raise ActionRefused(f"incident {incident.pk} is resolved")
        if incident.acknowledged_at:
            raise ActionRefused(
                f"incident {incident.pk} was acknowledged by {incident.acknowledged_by} at "
                f"{incident.acknowledged_at:%Y-%m-%d %H:%M:%S}"
            )
        incident.acknowledged_at, incident.acknowledged_by = timezone.now(), name[:150]
        incident.save(update_fields=["acknowledged_at", "acknowledged_by", "updated_at"])
    groups = _acknowledge_alerts(incident, name)
    changes = {
        "acknowledged_by": ["", name],
        "acknowledged_at": [None, incident.acknowledged_at],
        "alert_groups_acknowledged": [[], groups],
    }
    audit.record(user, "acknowledge", incident, changes, request, source=source)
    return incident


def _acknowledge_alerts(incident: Incident, name: str) -> list[int]:
    try:
        from fabric_ops.alerting.acknowledgement import acknowledge_incident_groups
    except ImportError:  # pragma: no cover - alerting is part of the product
        return []
    try:
        return acknowledge_incident_groups(incident, name)
    except Exception:  # the acknowledgement stands; the adapter acknowledges the groups at the next sync
        logger.exception("incident %s: alert groups not acknowledged now", incident.pk)
        return []


def _note(note: str | None) -> str:
    note = (note or "").strip()
    if len(note) > NOTE_MAX:
        raise ValueError(f"note too long: {len(note)} characters, at most {NOTE_MAX}")
    return note


def resolve(incident_id: int, user: Any, note: str, request: Any = None, *, source: str) -> Incident:
    from fabric_ops.health.incidents import transition

    name, note = user.get_username(), _note(note)
    if not note:
        raise ValueError("say how it was resolved (note)")
    with transaction.atomic():
        incident = Incident.objects.select_for_update().get(pk=incident_id)
        before = incident.status
        if before == IncidentStatus.RESOLVED:
            raise ActionRefused(f"incident {incident.pk} is already resolved")
        busy = incident.runs.filter(status__in=BUSY_RUN_STATUSES).first()
        if busy is not None:
            raise ActionRefused(f"{busy} is still acting on it; wait for it to finish")
        held = {run.pk: in_force(run) for run in incident.runs.filter(status=RunStatus.SUCCEEDED)}
        held = {pk: what for pk, what in held.items() if what}
        if held:
            raise ActionRefused(
                "still in force: "
                + "; ".join(f"remediation run {pk}: {describe(what)}" for pk, what in held.items())
                + ": roll back first (or let the scheduled restore do it)"
            )
        rejected = []
        for run in incident.runs.select_for_update().filter(status=RunStatus.AWAITING_APPROVAL):
            _reject(run, name, f"incident resolved by {name}")
            rejected.append(run.pk)
        try:
            transition(incident, IncidentStatus.RESOLVED, reason=f"resolved by {name}: {note}"[:2000])
        except ValueError as exc:
            raise ActionRefused(str(exc)) from exc
        changes = {"status": [before, incident.status], "note": [None, note]}
        if rejected:
            changes["runs_rejected"] = [[], rejected]
        audit.record(user, "resolve", incident, changes, request, source=source)
    return incident


def _reject(run: RemediationRun, name: str, note: str) -> None:
    now = timezone.now()
    run.status, run.rejected_by, run.rejected_at, run.finished_at = RunStatus.REFUSED, name[:150], now, now
    run.reason = f"rejected by {name}" + (f": {note}" if note else "")
    run.save(update_fields=["status", "rejected_by", "rejected_at", "finished_at", "reason"])


def _cooldown_s(playbook_name: str) -> float:
    try:
        from fabric_ops.health.playbooks import load_playbooks

        book = next((b for b in load_playbooks() if b.name == playbook_name), None)
    except FabricOpsError:
        book = None
    return float(book.cooldown) if book is not None else DEFAULT_REJECT_COOLDOWN_S


def reject(run_id: int, user: Any, note: str = "", request: Any = None, *, source: str) -> RemediationRun:
    name, note = user.get_username(), _note(note)
    cooldown = None
    with transaction.atomic():
        run = RemediationRun.objects.select_for_update().select_related("incident").get(pk=run_id)
        if run.status != RunStatus.AWAITING_APPROVAL:
            raise ActionRefused(f"{run} is {run.status}, not awaiting approval")
        cooldown = _cooldown_s(run.playbook)
        _reject(run, name, note)
        # Re-evaluation would otherwise propose the same run again within minutes: the playbook cools down.
        until = timezone.now() + timedelta(seconds=cooldown)
        Cooldown.objects.update_or_create(playbook=run.playbook, target_key=run.target_key, defaults={"until": until})
        incident = run.incident
        incident.reason = f"remediation {run.pk} ({run.playbook}) {run.reason}"[:2000]
        incident.save(update_fields=["reason", "updated_at"])
        changes = {
            "status": [RunStatus.AWAITING_APPROVAL, run.status],
            "rejected_by": ["", name],
            "note": [None, note],
            "cooldown_until": [None, until],
        }
        audit.record(user, "reject", run, changes, request, source=source)
    return run


def _queued_for_s() -> float:
    return float(getattr(settings, "FABRIC_OPS_WEB_QUEUED_ACTION_S", 300))


def queued(run: RemediationRun, action: str) -> AuditEntry | None:
    """The audit row of an ``approve`` / ``rollback`` of ``run`` that is queued and not yet taken by a worker (the
    run still in the state it needs), or None. A rollback counts as taken once a restore step started after it."""
    since = timezone.now() - timedelta(seconds=_queued_for_s())
    last = (
        AuditEntry.objects.filter(object_type="health.remediationrun", object_id=str(run.pk),
                                  action__in=(action, NOT_QUEUED), timestamp__gte=since)
        .order_by("-timestamp", "-id")
        .first()
    )  # fmt: skip
    if last is None or last.action != action:
        return None
    if action == "rollback" and run.actions.filter(phase="restore", started_at__gte=last.timestamp).exists():
        return None
    return last


def _refuse_if_queued(run: RemediationRun, action: str, what: str) -> None:
    entry = queued(run, action)
    if entry is not None:
        raise ActionRefused(
            f"{run}: {what} already queued by {entry.actor} at {entry.timestamp:%Y-%m-%d %H:%M:%S} UTC "
            f"({entry.get_source_display()}); a worker carries it out"
        )


def _send_on_commit(task: Any, run: RemediationRun, user: Any, request: Any, source: str, action: str) -> list:
    """Send ``task(run, user)`` once the surrounding transaction commits. Returns a list that holds the broker's
    error if it did not take the task; the change is then withdrawn with a ``not-queued`` audit row."""
    failed: list[Exception] = []
    name = user.get_username()

    def send() -> None:
        try:
            task.apply_async(args=[run.pk, name], retry=False)
        except Exception as exc:  # the broker's errors vary by transport
            logger.error("remediation %s: %s could not be queued: %s", run.pk, task.name, exc)
            failed.append(exc)
            audit.record(user, NOT_QUEUED, run, {action: ["queued", "not queued: broker unreachable"]}, request,
                         source=source)  # fmt: skip

    transaction.on_commit(send)
    return failed


def _raise_if_failed(failed: list) -> None:
    if failed:
        raise NotQueued(f"not queued: broker unreachable ({failed[0]})")


def approve(run_id: int, user: Any, request: Any = None, *, source: str) -> RemediationRun:
    """Queue the approval to a worker. Nothing the worker reads is written here: the run's row is locked, its state
    checked, the audit row written, and the task sent once that commits. A second approval while the first waits
    for a worker is refused. A rejection that lands before the worker starts wins (the worker finds the run no
    longer waiting)."""
    from .tasks import approve_remediation

    name = user.get_username()
    with transaction.atomic():
        run = RemediationRun.objects.select_for_update().get(pk=run_id)
        if run.status != RunStatus.AWAITING_APPROVAL:
            raise ActionRefused(f"{run} is {run.status}, not awaiting approval")
        _refuse_if_queued(run, "approve", "approval")
        audit.record(user, "approve", run, {"approved_by": [None, name]}, request, source=source)
        failed = _send_on_commit(approve_remediation, run, user, request, source, "approve")
    _raise_if_failed(failed)
    return run


def rollback(run_id: int, user: Any, request: Any = None, *, source: str) -> RemediationRun:
    """Queue the restore of a verified mitigation (links back up, ports out of the overrides, push, verify) to a
    worker; serialised per run like :func:`approve`."""
    from .tasks import rollback_remediation

    with transaction.atomic():
        run = RemediationRun.objects.select_for_update(of=("self",)).select_related("incident").get(pk=run_id)
        held = in_force(run)
        if not held:
            raise ActionRefused(
                f"{run} is {run.status}: no drain, cost-out or PFC disable of it is in force to roll back"
            )
        if run.incident.status == IncidentStatus.MITIGATING:
            raise ActionRefused(f"incident {run.incident_id} is being mitigated by another run; wait for it")
        busy = running_restore(run)
        if busy is not None:
            raise ActionRefused(str(RestoreInProgress(run, busy)))
        _refuse_if_queued(run, "rollback", "a rollback")
        changes: dict[str, Any] = {key: [names, []] for key, names in held.items() if key != "links"}
        if "links" in held:
            changes.update({"links": [held["links"], held["links"]], "state": ["drained", "up"]})
        audit.record(user, "rollback", run, changes, request, source=source)
        failed = _send_on_commit(rollback_remediation, run, user, request, source, "rollback")
    _raise_if_failed(failed)
    return run
