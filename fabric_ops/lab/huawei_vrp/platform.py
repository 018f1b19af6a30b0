"""The configuration state of one emulated CloudEngine: running, startup, commits, trial.

One :class:`VrpPlatform` lives in ``SwitchState.platform_state``. Sessions keep
their own candidate (a list of :class:`Op`) and hand it to :meth:`commit`;
every change of the running configuration (commit, trial revert, rollback,
reboot) ends in :meth:`_apply_effects`, which tells the data plane.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import threading
import time
from dataclasses import dataclass, field

from fabric_ops.lab.state import SwitchState
from fabric_ops.lab.timers import TimerHandle, schedule

from . import effects
from .config import Node, Op, apply_ops, parse, render_lines

logger = logging.getLogger(__name__)

FIRST_COMMIT_ID = 1000000001
MAX_COMMITS = 80  # VRP keeps a bounded number of rollback points


class VrpError(Exception):
    """A CLI-level refusal; the message is the exact text the device prints."""


@dataclass
class CommitRecord:
    commit_id: int
    user: str
    when: float
    label: str
    before: Node
    after: Node


@dataclass
class Trial:
    before: Node
    deadline: float
    user: str
    commit_id: int | None  # the trial's rollback point, removed again if the trial is not confirmed
    timer: TimerHandle | None = None  # on the lab's shared timer heap: no thread per trial

    def cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()


@dataclass
class VrpPlatform:
    running: Node
    startup: Node
    updated_at: float = field(default_factory=time.time)
    updated_by: str = "SYSTEM"
    saved_at: float = field(default_factory=time.time)
    commits: list[CommitRecord] = field(default_factory=list)
    next_commit_id: int = FIRST_COMMIT_ID
    trial: Trial | None = None
    sessions: set = field(default_factory=set)
    lock: threading.RLock = field(default_factory=threading.RLock)

    # ---- helpers -------------------------------------------------------------------------------------------
    def sysname(self, default: str) -> str:
        for child in self.running.children:
            if child.text.startswith("sysname "):
                return child.text.split(None, 1)[1]
        return default

    def _record(self, user: str, before: Node, after: Node, label: str = "") -> CommitRecord:
        record = CommitRecord(self.next_commit_id, user, time.time(), label, before, after)
        self.next_commit_id += 1
        self.commits.append(record)
        del self.commits[:-MAX_COMMITS]
        self.updated_at, self.updated_by = record.when, user
        return record


def platform(switch: SwitchState) -> VrpPlatform:
    state = switch.platform_state
    if not isinstance(state, VrpPlatform):
        raise RuntimeError(f"{switch.hostname}: huawei_vrp front end not initialised")
    return state


def _apply_effects(switch: SwitchState, tree: Node) -> None:
    result = effects.compute(tree, list(switch.interfaces))
    switch.apply_config_effects(
        qos=result.qos, admin_up=result.admin_up, mtu=result.mtu, descriptions=result.descriptions
    )


def commit(switch: SwitchState, ops: list[Op], user: str, trial_seconds: int | None = None, label: str = "") -> str:
    """Commit a session's candidate; a plain commit also confirms a pending trial. Returns what the CLI prints."""
    state = platform(switch)
    with state.lock:
        message = ""
        if state.trial is not None:
            if trial_seconds is not None:
                raise VrpError("Error: The system is in trial configuration mode, and only one trial is allowed.")
            state.trial.cancel()
            state.trial = None
            message = "Info: The trial configuration has been confirmed."
        before = state.running
        after = apply_ops(before, ops) if ops else before
        changed = after != before
        record = None
        if changed:
            state.running = after
            record = state._record(user, before, after, label)
        if trial_seconds is not None:
            trial = Trial(
                before=before,
                deadline=time.time() + trial_seconds,
                user=user,
                commit_id=record.commit_id if record else None,
            )
            trial.timer = schedule(trial_seconds, functools.partial(_trial_expired, switch, trial))
            state.trial = trial
            message = (
                f"Info: The system will roll back to the configuration before the trial in {trial_seconds} "
                "seconds unless the configuration is committed."
            )
        if changed:
            # Under the platform lock, like EOS: two commits (or a commit and a trial revert) racing each other
            # reach the data plane in the order they changed the running configuration.
            _apply_effects(switch, after)
    if changed:
        suffix = " (trial)" if trial_seconds else ""
        logger.info("%s: %s committed %d change(s)%s", switch.hostname, user, len(ops), suffix)
    return message


def _trial_expired(switch: SwitchState, trial: Trial) -> None:
    """Restore the configuration from before ``trial``, unless it was confirmed, aborted or replaced meanwhile."""
    state = platform(switch)
    with state.lock:
        # Identity, not just "a trial is pending": a timer already due when its trial was confirmed must not
        # revert the next trial.
        if state.trial is not trial:
            return
        before = state.trial.before
        trial_commit = state.trial.commit_id
        state.trial = None
        state.running = before
        # An unconfirmed trial leaves no rollback point behind, as if it had never been committed.
        state.commits = [r for r in state.commits if r.commit_id != trial_commit]
        state.updated_at, state.updated_by = time.time(), "SYSTEM"
        _apply_effects(switch, before)
    logger.info("%s: commit trial not confirmed in time, configuration rolled back", switch.hostname)


def abort_trial(switch: SwitchState) -> None:
    state = platform(switch)
    with state.lock:
        if state.trial is None:
            raise VrpError("Error: No trial configuration exists.")
        state.trial.cancel()
        # The lock is re-entrant: nothing can confirm the trial between cancel and revert.
        _trial_expired(switch, state.trial)


def rollback(switch: SwitchState, user: str, last: int | None = None, commit_id: int | None = None) -> None:
    """``rollback configuration last N`` undoes N commits; ``to commit-id X`` restores the state X produced."""
    state = platform(switch)
    with state.lock:
        if state.trial is not None:
            raise VrpError("Error: The system is in trial configuration mode. Please try again later.")
        records = [r for r in state.commits if r.label != "rollback"]
        if last is not None:
            if last > len(records):
                raise VrpError("Error: The number of rollback points is insufficient.")
            target = records[-last].before
        else:
            found = next((r for r in state.commits if r.commit_id == commit_id), None)
            if found is None:
                raise VrpError("Error: The specified commit ID does not exist.")
            target = found.after
        before = state.running
        state.running = target.copy()
        state._record(user, before, state.running, "rollback")
        _apply_effects(switch, state.running)


def save(switch: SwitchState) -> None:
    state = platform(switch)
    with state.lock:
        state.startup = state.running.copy()
        state.saved_at = time.time()


def reboot(switch: SwitchState) -> None:
    """Running becomes startup; trial timers and every session's candidate are gone."""
    state = platform(switch)
    with state.lock:
        if state.trial is not None:
            state.trial.cancel()
            state.trial = None
        for session in list(state.sessions):
            session.drop_candidate()
        state.running = state.startup.copy()
        state.updated_at, state.updated_by = time.time(), "SYSTEM"
        switch.boot_time = time.time()
        _apply_effects(switch, state.running)


def _netmask_len(address: str) -> tuple[str, int] | None:
    try:
        iface = ipaddress.IPv4Interface(address)
    except ValueError:
        return None
    return str(iface.ip), iface.network.prefixlen


def initial_config(switch: SwitchState, username: str = "admin") -> str:
    """The factory-plus-ZTP configuration a lab switch boots with, in VRP syntax."""
    lines = [f"sysname {switch.hostname}", "#", "lldp enable", "#"]
    if switch.loopback:
        address = _netmask_len(switch.loopback if "/" in switch.loopback else f"{switch.loopback}/32")
        if address:
            lines += [f"router id {address[0]}", "#"]
    lines += ["aaa", f" local-user {username} service-type ssh", f" local-user {username} level 3", "#"]
    for name, iface in switch.interfaces.items():
        lines.append(f"interface {name}")
        if iface.description:
            lines.append(f" description {iface.description}")
        if iface.address:
            lines.append(" undo portswitch")
            address = _netmask_len(iface.address)
            if address:
                lines.append(f" ip address {address[0]} {address[1]}")
        if iface.mtu != 1500:
            lines.append(f" mtu {iface.mtu}")
        if not iface.admin_up:
            lines.append(" shutdown")
        lines.append("#")
    if switch.loopback:
        address = _netmask_len(switch.loopback if "/" in switch.loopback else f"{switch.loopback}/32")
        if address:
            lines += ["interface LoopBack0", f" ip address {address[0]} 32", "#"]
    lines += [
        "stelnet server enable",
        f"ssh user {username}",
        f"ssh user {username} authentication-type password",
        f"ssh user {username} service-type stelnet",
        "#",
        "user-interface vty 0 4",
        " authentication-mode aaa",
        " protocol inbound ssh",
        "#",
    ]
    return "\n".join(lines) + "\n"


def render_running(state: VrpPlatform, version: str) -> list[str]:
    """``display current-configuration`` lines: header comments, body, ``return``."""
    updated = time.strftime("%Y-%m-%d %H:%M:%S+00:00", time.gmtime(state.updated_at))
    saved = time.strftime("%Y-%m-%d %H:%M:%S+00:00", time.gmtime(state.saved_at))
    header = [
        f"!Software Version {version}",
        f"!Last configuration was updated at {updated} by {state.updated_by}",
        f"!Last configuration was saved at {saved}",
    ]
    return header + render_lines(state.running) + ["return"]


def new_platform(switch: SwitchState, username: str = "admin") -> VrpPlatform:
    tree = parse(initial_config(switch, username))
    return VrpPlatform(running=tree, startup=tree.copy())
