"""``lab up`` in the foreground: one process per host, a pid file, the control channel, clean shutdown.

A second ``lab up`` is refused while the first holds an exclusive lock on ``var/lab/lab.lock``
(a lock, not just a pid file, so a crashed lab never blocks the next one).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from fabric_ops.errors import LabError

from .control import ControlServer, control_file, lab_dir, write_private_json

logger = logging.getLogger(__name__)


class SingleInstance:
    """Hold ``var/lab/lab.lock`` for the life of the lab process."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or lab_dir()
        self.path = self.directory / "lab.lock"
        self.pid_path = self.directory / "lab.pid"
        self._fd: int | None = None

    def acquire(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            pid = self.pid_path.read_text().strip() if self.pid_path.exists() else "?"
            raise LabError(f"a lab is already running (pid {pid}); stop it with `manage.py lab down`") from None
        self._fd = fd
        self.pid_path.write_text(f"{os.getpid()}\n")

    def release(self) -> None:
        if self._fd is None:
            return
        self.pid_path.unlink(missing_ok=True)
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None


def run_lab(
    *,
    fabrics: list[str] | None = None,
    inventory: str | None = None,
    control_port: int = 0,
    tick: float = 0.2,
    seed: int = 1,
    load: float = 0.5,
    max_duty: float = 0.1,
    pattern: str = "ring",
    frontends: tuple[str, ...] = ("eos", "huawei_vrp", "gnmi"),
    ready: threading.Event | None = None,
    stop: threading.Event | None = None,
    install_signals: bool = True,
    out: Any = None,
) -> None:
    """Build the lab, serve it, and block until SIGINT/SIGTERM, ``lab down`` or ``stop`` is set."""
    from .api import Lab
    from .routing import job_from_dict
    from .spec import build_from_db, build_from_inventory

    guard = SingleInstance()
    guard.acquire()
    stop = stop or threading.Event()
    lab = control = None
    try:
        spec = build_from_inventory(inventory, fabrics) if inventory else build_from_db(fabrics)
        job = job_from_dict({"name": "default", "load": load, "pattern": pattern}, set())
        lab = Lab.start(spec, frontends=frontends, tick=tick, seed=seed, jobs=[job], max_duty=max_duty)
        control = ControlServer(lab, on_shutdown=stop.set, port=control_port).start()
        write_private_json(
            control_file(),
            {
                "pid": os.getpid(),
                "url": control.url,
                "token": control.token,
                "started_at": time.time(),
                "fabrics": spec.fabrics,
                "switches": len(spec.switches),
            },
        )
        if install_signals:
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, lambda *_: stop.set())
        status = lab.status()
        message = (
            f"lab up: {status['switches']} switches, {status['links']['total']} links, "
            f"front ends {json.dumps(status['frontends'])}, control {control.url} (token in {control_file()})"
        )
        logger.info("%s", message)
        if out is not None:
            out.write(message + "\n")
            out.flush()
        if ready is not None:
            ready.set()
        while not stop.wait(0.5):
            pass
        logger.info("lab shutting down")
    finally:
        if control is not None:
            control.stop()
        control_file().unlink(missing_ok=True)
        if lab is not None:
            lab.stop()
        guard.release()
