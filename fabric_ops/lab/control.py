"""The running lab's control channel: JSON over HTTP on 127.0.0.1, bearer-token authenticated.

``lab up`` writes ``var/lab/control.json`` (mode 0600) with the URL and a random token;
``lab status|inject|clear|down`` and :class:`LabClient` read it. Anyone who can read that
file can control the lab, exactly like anyone who can signal the process.

Endpoints (all require ``Authorization: Bearer <token>``):

====== ================== ==============================================================
GET    /v1/status         lab status (switches, links, ticks, front ends, fault records)
GET    /v1/faults         fault records
POST   /v1/faults         ``{"kind", "target", "for": seconds|null, "params": {...}}`` -> record
DELETE /v1/faults/<id>    clear one fault -> [record]
DELETE /v1/faults         clear every active fault -> [records]
GET    /v1/jobs           the GPU jobs generating traffic
PUT    /v1/jobs           ``{"jobs": [{"name", "load", "pattern", "hosts", "qps"}, ...]}`` -> jobs
POST   /v1/shutdown       stop the lab (``lab down``)
====== ================== ==============================================================
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import secrets
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from fabric_ops.errors import FabricOpsError, LabError, LabUnavailable

logger = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
REQUEST_TIMEOUT = 10.0  # seconds a client may take to send its request: a stalled client must not hold a thread


def lab_dir() -> Path:
    from django.conf import settings

    return Path(settings.VAR_DIR) / "lab"


def control_file() -> Path:
    return lab_dir() / "control.json"


def write_private_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` readable by the owner only (created 0600 before any byte of the token lands)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)
    os.replace(tmp, path)


class _Handler(BaseHTTPRequestHandler):
    server: ControlServer
    protocol_version = "HTTP/1.1"
    timeout = REQUEST_TIMEOUT

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("control %s - " + format, self.address_string(), *args)

    def _reply(self, code: int, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _authorised(self) -> bool:
        header = self.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), self.server.token.encode()):
            return True
        self._reply(401, {"error": "missing or wrong bearer token (see var/lab/control.json)"})
        return False

    def _body(self) -> dict[str, Any]:
        raw_length = self.headers.get("Content-Length") or "0"
        try:
            length = int(raw_length)
        except ValueError:
            raise LabError(f"Content-Length is not a number: {raw_length!r}") from None
        if length < 0:
            raise LabError(f"Content-Length is negative: {length}")
        if length > MAX_BODY:
            raise LabError(f"request body too large ({length} bytes)")
        raw = self.rfile.read(length) if length else b"{}"
        try:
            data = json.loads(raw or b"{}")
        except ValueError as exc:
            raise LabError(f"request body is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise LabError("request body must be a JSON object")
        return data

    def _dispatch(self, method: str) -> None:
        if not self._authorised():
            return
        lab = self.server.lab
        path = self.path.split("?", 1)[0].rstrip("/")
        try:
            if method == "GET" and path == "/v1/status":
                return self._reply(200, lab.status())
            if method == "GET" and path == "/v1/faults":
                return self._reply(200, lab.status()["faults"])
            if method == "POST" and path == "/v1/faults":
                body = self._body()
                params = body.get("params") or {}
                if not isinstance(params, dict):
                    raise LabError("params must be an object of name: value")
                record = lab.inject(str(body.get("kind", "")), str(body.get("target", "")), duration=body.get("for"),
                                    **params)  # fmt: skip
                return self._reply(201, record)
            if method == "GET" and path == "/v1/jobs":
                return self._reply(200, lab.jobs())
            if method == "PUT" and path == "/v1/jobs":
                jobs = self._body().get("jobs")
                if not isinstance(jobs, list):
                    raise LabError('body must be {"jobs": [ ... ]}')
                return self._reply(200, lab.set_jobs(jobs))
            if method == "DELETE" and path == "/v1/faults":
                return self._reply(200, lab.clear(all=True))
            if method == "DELETE" and path.startswith("/v1/faults/"):
                return self._reply(200, lab.clear(path.rsplit("/", 1)[1]))
            if method == "POST" and path == "/v1/shutdown":
                self.server.on_shutdown()  # only sets an event: the reply still goes out before the lab stops
                return self._reply(202, {"stopping": True})
            return self._reply(404, {"error": f"no such endpoint: {method} {path}"})
        except FabricOpsError as exc:
            return self._reply(400, {"error": str(exc)})
        except Exception as exc:  # report, don't kill the control thread
            logger.exception("control request %s %s failed", method, path)
            return self._reply(500, {"error": f"{type(exc).__name__}: {exc}"})

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PUT(self) -> None:
        self._dispatch("PUT")


class ControlServer(ThreadingHTTPServer):
    """HTTP control endpoint for one lab; ``on_shutdown`` is called (from a request thread) by POST /v1/shutdown."""

    daemon_threads = True

    def __init__(self, lab: Any, on_shutdown: Callable[[], None], host: str = "127.0.0.1", port: int = 0) -> None:
        self.lab = lab
        self.on_shutdown = on_shutdown
        self.token = secrets.token_urlsafe(32)
        try:
            super().__init__((host, port), _Handler)
        except OSError as exc:
            raise LabError(f"cannot listen for lab control on {host}:{port}: {exc}") from exc
        self._thread = threading.Thread(target=self.serve_forever, name="lab-control", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> ControlServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class LabClient:
    """Talk to a running lab over its control channel (what ``manage.py lab`` uses)."""

    def __init__(self, url: str | None = None, token: str | None = None, *, timeout: float = 30.0) -> None:
        if url is None or token is None:
            path = control_file()
            try:
                data = json.loads(path.read_text())
            except FileNotFoundError:
                raise LabUnavailable(
                    f"no lab is running ({path} not found; start one with `manage.py lab up`)"
                ) from None
            except (OSError, ValueError) as exc:
                raise LabError(f"{path}: unreadable lab control file ({exc})") from exc
            missing = [key for key in ("url", "token") if not isinstance(data, dict) or not data.get(key)]
            if missing:
                raise LabError(f"{path}: lab control file lacks {', '.join(missing)} (restart: `manage.py lab up`)")
            url, token = url or data["url"], token or data["token"]
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read()).get("error", exc.reason)
            except ValueError:
                message = exc.reason
            raise LabError(f"lab at {self.url}: {message}") from None
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            raise LabUnavailable(f"no lab answering at {self.url} ({getattr(exc, 'reason', exc)})") from None

    def status(self) -> dict[str, Any]:
        return self._call("GET", "/v1/status")

    def faults(self) -> list[dict[str, Any]]:
        return self._call("GET", "/v1/faults")

    def inject(self, kind: str, target: str, *, duration: float | None = None, **params: Any) -> dict[str, Any]:
        return self._call("POST", "/v1/faults", {"kind": kind, "target": target, "for": duration, "params": params})

    def clear(self, fault_id: str | None = None, *, all: bool = False) -> list[dict[str, Any]]:
        if all:
            return self._call("DELETE", "/v1/faults")
        if not fault_id:
            raise LabError("name a fault id to clear, or clear all")
        return self._call("DELETE", f"/v1/faults/{fault_id}")

    def jobs(self) -> list[dict[str, Any]]:
        return self._call("GET", "/v1/jobs")

    def set_jobs(self, jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return self._call("PUT", "/v1/jobs", {"jobs": jobs})

    def shutdown(self) -> None:
        self._call("POST", "/v1/shutdown")
