"""An emulated EOS switch's configuration state: running/startup config, flash files, configure sessions, timers.

Stored in ``SwitchState.platform_state``. Every change that reaches the running configuration ends in
:meth:`EosPlatform.apply_effects`, so commits, rollbacks and automatic commit-timer reverts all move the
lab's data plane the same way.

Configuration trees are shared, not copied, wherever nobody edits them: a committed session's tree becomes
the running-config as it is, the running-config is the session's base, the commit checkpoint and (after
``write memory``) the startup-config by reference. The only things that edit a tree in place are a pending
session's own lines (its private copy, taken when it opens) and ``configure terminal`` / ``copy ...
running-config``, which go through :meth:`EosPlatform.writable_running`: it copies the running tree first when
anything else still holds it (copy-on-write at the tree level). Rendered lines are cached per tree
(:meth:`EosPlatform.lines_of`) and dropped whenever a tree is edited (:meth:`EosPlatform.edited`), so the
diff, ``show running-config``, ``copy startup-config`` and the verification reads of one push render each
distinct configuration once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from fabric_ops.lab.eos.config import ConfigTree
from fabric_ops.lab.eos.effects import compute_effects
from fabric_ops.lab.eos.grammar import CliError
from fabric_ops.lab.state import SwitchState
from fabric_ops.lab.timers import TimerHandle, schedule

__all__ = ["MAX_OPEN_SESSIONS", "MAX_SAVED_SESSIONS", "ConfigSession", "EosPlatform"]

logger = logging.getLogger(__name__)

MAX_OPEN_SESSIONS = 5  # EOS defaults ("show configuration sessions" maxOpenSessions / maxSavedSessions)
MAX_SAVED_SESSIONS = 1
_LINES_CACHED = 6  # rendered trees kept per switch: running, startup, a few sessions


@dataclass
class ConfigSession:
    name: str
    config: ConfigTree
    base: ConfigTree  # running-config when the session was opened (shared, never edited)
    user: str = ""
    state: str = "pending"  # pending | pendingCommitTimer | completed
    created: float = field(default_factory=time.time)
    completed_time: float | None = None
    commit_by: float | None = None  # switch uptime (s) by which a commit timer must be confirmed
    checkpoint: ConfigTree | None = None  # running-config before a timed commit, restored if not confirmed
    timer: TimerHandle | None = field(default=None, repr=False)


class EosPlatform:
    """Configuration state of one emulated EOS switch; all methods are thread-safe."""

    def __init__(self, switch: SwitchState, running: ConfigTree):
        self.switch = switch
        self.lock = threading.RLock()
        self.running = running
        self.startup = running  # shared until one of them is edited or replaced
        self._running_shared = True  # something besides self.running holds the running tree
        self._lines: OrderedDict[int, tuple[ConfigTree, list[str]]] = OrderedDict()
        self.startup_modified = time.time()
        self.files: dict[str, str] = {}
        self.sessions: dict[str, ConfigSession] = {}
        self.generation = 0  # bumped on reboot so timers armed before it do nothing

    # --- sharing trees ----------------------------------------------------------------------------------------

    def _set_running(self, tree: ConfigTree, shared: bool = True) -> None:
        """Make ``tree`` the running-config; ``shared``: it is also held elsewhere (never edit it in place)."""
        self.running = tree
        self._running_shared = shared

    def writable_running(self) -> ConfigTree:
        """The running tree, safe to edit in place: copied first if a session, checkpoint or startup shares it."""
        with self.lock:
            if self._running_shared:
                self.running = self.running.copy()
                self._running_shared = False
            return self.running

    def lines_of(self, tree: ConfigTree) -> list[str]:
        """``tree.lines()``, rendered once per tree until :meth:`edited` says it changed (do not mutate the list)."""
        with self.lock:
            cached = self._lines.get(id(tree))
            if cached is not None and cached[0] is tree:
                self._lines.move_to_end(id(tree))
                return cached[1]
            lines = tree.lines()
            self._lines[id(tree)] = (tree, lines)
            while len(self._lines) > _LINES_CACHED:
                self._lines.popitem(last=False)
            return lines

    def edited(self, tree: ConfigTree) -> None:
        """Forget what ``tree`` rendered to: called after every in-place edit."""
        with self.lock:
            self._lines.pop(id(tree), None)

    # --- effects ----------------------------------------------------------------------------------------------

    def apply_effects(self) -> None:
        with self.lock:
            effects = compute_effects(self.running)
            self.switch.apply_config_effects(
                qos=effects.qos, admin_up=effects.admin_up, mtu=effects.mtu, descriptions=effects.descriptions
            )

    def clean_config(self) -> ConfigTree:
        return ConfigTree(self.running.physical)

    # --- sessions ---------------------------------------------------------------------------------------------

    def open_session(self, name: str, user: str) -> ConfigSession:
        with self.lock:
            session = self.sessions.get(name)
            if session is not None and session.state == "pending":
                return session
            if session is not None:
                raise CliError(f"Cannot enter session {name} (session has already been committed)")
            pending = [s for s in self.sessions.values() if s.state == "pending"]
            if len(pending) >= MAX_OPEN_SESSIONS:
                raise CliError("Maximum number of pending sessions has been reached")
            # the session edits its own copy; the base is the running tree itself, which is never edited in place
            session = ConfigSession(name=name, config=self.running.copy(), base=self.running, user=user)
            self._running_shared = True
            self.sessions[name] = session
            return session

    def commit(self, name: str, timer_seconds: int | None = None) -> None:
        """``configure session NAME commit [timer hh:mm:ss]``: apply, or confirm a pending timed commit."""
        with self.lock:
            session = self.sessions.get(name)
            if session is None:
                raise CliError(f"Session {name} does not exist")
            if session.state == "completed":
                raise CliError(f"Session {name} has already been committed")
            if session.state == "pending":
                checkpoint = self.running  # the running tree is never edited in place while shared
                # The session's tree becomes the running-config as it is: a committed session takes no more lines.
                self._set_running(session.config)
                if timer_seconds is None:
                    self._complete(session)
                else:
                    session.checkpoint = checkpoint
                    self._arm(session, timer_seconds)
                logger.info("%s: configure session %s committed (timer=%s)", self.switch.hostname, name, timer_seconds)
                self.apply_effects()
                return
            # pendingCommitTimer: a plain commit confirms, a new timer extends the deadline
            if timer_seconds is None:
                self._complete(session)
                logger.info("%s: commit timer of session %s confirmed", self.switch.hostname, name)
            else:
                self._arm(session, timer_seconds)

    def abort(self, name: str) -> None:
        """``configure session NAME abort``; for a session under a commit timer this rolls the change back."""
        with self.lock:
            session = self.sessions.pop(name, None)
            if session is None:
                return
            self._cancel(session)
            if session.state == "pendingCommitTimer" and session.checkpoint is not None:
                self._set_running(session.checkpoint)
                logger.info(
                    "%s: session %s aborted under commit timer, running-config restored", self.switch.hostname, name
                )
                self.apply_effects()

    def _arm(self, session: ConfigSession, seconds: int) -> None:
        self._cancel(session)
        session.state = "pendingCommitTimer"
        session.commit_by = self.switch.uptime_seconds + seconds
        generation = self.generation
        session.timer = schedule(seconds, lambda: self._expire(session.name, generation, session))

    def _cancel(self, session: ConfigSession) -> None:
        if session.timer is not None:
            session.timer.cancel()
            session.timer = None

    def _complete(self, session: ConfigSession) -> None:
        self._cancel(session)
        session.state = "completed"
        session.completed_time = time.time()
        session.checkpoint = None
        session.commit_by = None
        completed = sorted(
            (s for s in self.sessions.values() if s.state == "completed"), key=lambda s: s.completed_time or 0
        )
        for old in completed[:-MAX_SAVED_SESSIONS]:
            del self.sessions[old.name]

    def _expire(self, name: str, generation: int, session: ConfigSession) -> None:
        with self.lock:
            if generation != self.generation or self.sessions.get(name) is not session:
                return
            if session.state != "pendingCommitTimer" or session.checkpoint is None:
                return
            self._set_running(session.checkpoint)
            del self.sessions[name]
            logger.warning("%s: commit timer of session %s expired, configuration reverted", self.switch.hostname, name)
            self.apply_effects()

    # --- files and replace ------------------------------------------------------------------------------------

    def read_file(self, url: str) -> str:
        with self.lock:
            if url in ("running-config", "system:running-config", "system:/running-config"):
                return _text(self.lines_of(self.running))
            if url in ("startup-config", "flash:startup-config", "flash:/startup-config"):
                return _text(self.lines_of(self.startup))
            key = _flash(url)
            if key not in self.files:
                raise CliError(f"Error opening {url} (No such file or directory)")
            return self.files[key]

    def copy(self, source: str, destination: str) -> None:
        with self.lock:
            text = self.read_file(source)
            if destination in ("startup-config", "flash:startup-config", "flash:/startup-config"):
                tree = self.clean_config()
                tree.load_text(text)
                self.startup = tree
                self.startup_modified = time.time()
            elif destination in ("running-config", "system:running-config"):
                running = self.writable_running()
                try:
                    running.load_text(text)  # copy to running merges, as on EOS
                finally:
                    self.edited(running)
                self.apply_effects()
            elif destination.startswith("flash:"):
                self.files[_flash(destination)] = text
            else:
                raise CliError(f"Invalid destination URL {destination}")

    def write_memory(self) -> None:
        with self.lock:
            self.startup = self.running
            self._running_shared = True
            self.startup_modified = time.time()

    def replace(self, source: str) -> None:
        """``configure replace URL``: the running-config becomes exactly the file's content."""
        with self.lock:
            text = self.read_file(source)
            tree = self.clean_config()
            try:
                tree.load_text(text)
            except CliError as exc:
                raise CliError(f"Configuration replace failed: {exc.message}") from exc
            self._set_running(tree, shared=False)
            self.apply_effects()

    # --- power cycle ------------------------------------------------------------------------------------------

    def reboot(self) -> None:
        with self.lock:
            self.generation += 1
            for session in self.sessions.values():
                self._cancel(session)
            self.sessions.clear()
            self._set_running(self.startup)
            with self.switch.lock:
                self.switch.boot_time = time.time()
            self.apply_effects()

    def stop_timers(self) -> None:
        with self.lock:
            self.generation += 1
            for session in self.sessions.values():
                self._cancel(session)


def _text(lines: list[str]) -> str:
    return "\n".join(lines) + "\n"  # ConfigTree.text() from already rendered lines


def _flash(url: str) -> str:
    return "flash:" + url.split(":", 1)[1].lstrip("/")
