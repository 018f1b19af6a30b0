"""eAPI over HTTP(S) for many emulated switches in one process.

One acceptor thread waits on every switch's listening socket with a selector; accepted connections go to a
small worker pool that does the TLS handshake (or plain HTTP, detected from the first byte, so ``transport
http`` and ``https`` both work on the same port) and answers JSON-RPC ``runCmds`` at ``/command-api``.
Threads: 1 acceptor + at most ``workers`` (8), whatever the number of switches.

HTTP/1.1 keep-alive, as on a switch: a worker answers the requests a connection has ready, then hands the idle
connection back to the acceptor's selector instead of blocking on it, so a client that keeps its connection
between requests never holds a worker while it is thinking; a connection idle for ``_EapiHandler.timeout``
seconds is closed. Clients that open a connection per request (pyeapi's default) see no difference.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hmac
import json
import logging
import os
import selectors
import socket
import ssl
import struct
import tempfile
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from fabric_ops.devices.credentials import Credential
from fabric_ops.errors import LabError
from fabric_ops.lab.eos.cli import EapiError, run_cmds
from fabric_ops.lab.eos.platform import EosPlatform
from fabric_ops.lab.state import SwitchState
from fabric_ops.lab.tls import self_signed_certificate, write_private_bytes

__all__ = ["LabServer", "ensure_certificate"]

logger = logging.getLogger(__name__)

EAPI_PATH = "/command-api"
# Larger than any configuration push (a 64-port RoCE config is ~60 KB), small enough not to matter in memory.
MAX_BODY_BYTES = 8 * 1024 * 1024
_CERT_LOCK = threading.Lock()


def _var_dir() -> Path:
    try:
        from django.conf import settings

        return Path(settings.VAR_DIR)
    except Exception:
        return Path(os.environ.get("FABRIC_OPS_VAR_DIR", "var"))


def ensure_certificate(directory: Path | None = None) -> tuple[Path, Path]:
    """The lab's self-signed eAPI certificate, generated once and kept under var/lab/."""
    directory = directory or _var_dir() / "lab"
    cert_path, key_path = directory / "eapi-cert.pem", directory / "eapi-key.pem"
    with _CERT_LOCK:
        if cert_path.exists() and key_path.exists():
            return cert_path, key_path
        directory.mkdir(parents=True, exist_ok=True)
        cert_pem, key_pem = self_signed_certificate("fabric-ops-lab-eapi", days=3650)
        tmp_key = key_path.with_suffix(f".{os.getpid()}.tmp")
        write_private_bytes(tmp_key, key_pem)
        tmp_cert = cert_path.with_suffix(f".{os.getpid()}.tmp")
        tmp_cert.write_bytes(cert_pem)
        os.replace(tmp_key, key_path)
        os.replace(tmp_cert, cert_path)
        logger.info("generated lab eAPI certificate %s", cert_path)
        return cert_path, key_path


def _server_context(tls: tuple[bytes, bytes] | None) -> ssl.SSLContext:
    """TLS for eAPI: the lab's own (certificate_pem, key_pem) when given, else the generated self-signed pair."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if tls is None:
        cert, key = ensure_certificate()
        context.load_cert_chain(cert, key)
        return context
    # ssl loads a chain only from files: write the PEMs to private temporary files for the duration of the load
    with tempfile.TemporaryDirectory(prefix="eapi-tls-") as tmp:
        cert_path, key_path = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
        cert_path.write_bytes(tls[0])
        write_private_bytes(key_path, tls[1])
        try:
            context.load_cert_chain(cert_path, key_path)
        except ssl.SSLError as exc:
            raise LabError(f"eAPI TLS certificate/key given to the lab cannot be loaded ({exc})") from exc
    return context


class _Context:
    """What a request handler needs (passed where socketserver passes the server)."""

    def __init__(self, switch: SwitchState, credential: Credential):
        self.switch = switch
        self.credential = credential


class _EapiHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Arista-eAPI-lab"
    sys_version = ""
    timeout = 5  # per read: also bounds how long an idle keep-alive client can hold a worker

    server: _Context  # type: ignore[assignment]

    def log_message(self, format: str, *args) -> None:
        logger.debug("%s eAPI %s", self.server.switch.hostname, format % args)

    def _send(self, status: int, body: bytes, content_type: str = "application/json", extra: dict | None = None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _authorised(self) -> str | None:
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return None
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        cred = self.server.credential
        ok_user = hmac.compare_digest(user.encode(), cred.username.encode())
        ok_password = hmac.compare_digest(password.encode(), cred.password.encode())
        return user if ok_user and ok_password else None

    def do_GET(self) -> None:
        self._send(404, b"Not Found", "text/plain")

    def do_POST(self) -> None:
        switch = self.server.switch
        if not switch.alive:
            self.close_connection = True
            return
        if self.path.split("?")[0] != EAPI_PATH:
            self.close_connection = True
            self._send(404, b"Not Found", "text/plain")
            return
        user = self._authorised()  # before reading a body: an anonymous client gets nothing buffered
        if user is None:
            logger.info("%s: eAPI login refused from %s", switch.hostname, self.client_address[0])
            self.close_connection = True
            self._send(401, b"Unauthorized", "text/plain", {"WWW-Authenticate": 'Basic realm="eAPI"'})
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY_BYTES:
            self.close_connection = True
            self._send(413, b"Request Entity Too Large", "text/plain")
            return
        body = self.rfile.read(length) if length else b""
        request_id = None
        try:
            request = json.loads(body)
            request_id = request.get("id")
            if request.get("method") != "runCmds":
                raise EapiError(-32601, f"Method not found: {request.get('method')!r}")
            platform = switch.platform_state
            if not isinstance(platform, EosPlatform):
                raise EapiError(1000, "Switch is not initialised")
            reply = {
                "jsonrpc": "2.0",
                "id": request_id,
                "result": run_cmds(platform, user, request.get("params") or {}),
            }
        except EapiError as exc:
            reply = {"jsonrpc": "2.0", "id": request_id, "error": exc.as_json()}
        except (ValueError, AttributeError, TypeError) as exc:
            reply = {"jsonrpc": "2.0", "id": request_id, "error": {"code": -32700, "message": f"Parse error: {exc}"}}
        if not switch.alive:  # went down while the request ran: the client sees the connection drop
            self.close_connection = True
            return
        self._send(200, json.dumps(reply).encode())


class _Connection:
    """An accepted eAPI connection between requests: its handler (buffered reader/writer) and when it went idle."""

    def __init__(self, sock: socket.socket, handler: _EapiHandler, context: _Context):
        self.sock = sock
        self.handler = handler
        self.context = context
        self.idle_since = time.monotonic()


class _OneRequestHandler(_EapiHandler):
    """The handler without its blocking request loop: the server calls ``handle_one_request`` per readiness."""

    def __init__(self, request, client_address, server) -> None:  # no request is handled here
        self.request, self.client_address, self.server = request, client_address, server
        self.setup()
        self.close_connection = False

    def has_buffered_request(self) -> bool:
        """Bytes of a next request already read (a pipelining client) or decrypted: serve them without waiting."""
        sock = self.connection
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return True
        sock.settimeout(0.0)
        try:
            return bool(self.rfile.peek(1))
        except (ssl.SSLWantReadError, BlockingIOError, InterruptedError):
            return False
        except OSError:
            return True  # let the next read see the error and close
        finally:
            sock.settimeout(self.timeout)

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.finish()


def _reset(sock: socket.socket) -> None:
    """Close with RST, as a switch that stopped answering would leave a client: no HTTP response at all."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _api_shut(switch: SwitchState) -> bool:
    """``management api http-commands`` / ``shutdown`` turns eAPI off, on the lab as on a real switch."""
    platform = switch.platform_state
    if not isinstance(platform, EosPlatform):
        return False
    section = platform.running.root.find("management api http-commands")
    return section is None or (section.find("shutdown") is not None and section.find("shutdown").line == "shutdown")


class LabServer:
    """All eAPI listeners of one lab process. ``stop()`` closes them and lets the workers drain."""

    def __init__(
        self,
        switches: list[SwitchState],
        credential: Credential,
        workers: int = 8,
        tls: tuple[bytes, bytes] | None = None,
    ):
        self._tls = _server_context(tls)
        self._credential = credential
        self._selector = selectors.DefaultSelector()
        self._listeners: list[socket.socket] = []
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._rearm: deque[_Connection] = deque()  # idle keep-alive connections for the acceptor to watch
        self._idle: set[_Connection] = set()  # watched by the selector (acceptor thread only)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="eapi-worker")
        self._stopping = threading.Event()
        try:
            for switch in switches:
                self._listen(switch)
        except BaseException:
            self._close_listeners()
            raise
        self._thread = threading.Thread(target=self._loop, name="eapi-acceptor", daemon=True)
        self._thread.start()
        logger.info("eAPI serving %d switches", len(switches))

    def _listen(self, switch: SwitchState) -> None:
        try:
            sock = socket.create_server((switch.mgmt_address, switch.eapi_port), backlog=128)
        except OSError as exc:
            raise LabError(
                f"{switch.hostname}: cannot listen for eAPI on {switch.mgmt_address}:{switch.eapi_port} ({exc})"
            ) from exc
        sock.setblocking(False)
        self._listeners.append(sock)
        self._selector.register(sock, selectors.EVENT_READ, _Context(switch, self._credential))

    def _loop(self) -> None:
        try:
            self._accept_loop()
        finally:
            for idle in list(self._idle):
                self._unwatch(idle)
                idle.handler.close()
                _reset(idle.sock)
            while self._rearm:
                leftover = self._rearm.popleft()
                leftover.handler.close()
                _reset(leftover.sock)

    def _unwatch(self, idle: _Connection) -> None:
        self._idle.discard(idle)
        with contextlib.suppress(KeyError, ValueError, OSError):
            self._selector.unregister(idle.sock)

    def _watch_returned(self) -> None:
        with contextlib.suppress(OSError):
            while self._wake_r.recv(4096):
                pass
        while self._rearm:
            idle = self._rearm.popleft()
            try:
                self._selector.register(idle.sock, selectors.EVENT_READ, idle)
            except (OSError, ValueError):
                idle.handler.close()
                continue
            self._idle.add(idle)

    def _close_stale(self) -> None:
        limit = time.monotonic() - _EapiHandler.timeout
        for idle in [c for c in self._idle if c.idle_since < limit or not c.context.switch.alive]:
            self._unwatch(idle)
            idle.handler.close()
            if idle.context.switch.alive:
                with contextlib.suppress(OSError):
                    idle.sock.close()
            else:
                _reset(idle.sock)

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            for key, _ in self._selector.select(timeout=1.0):
                if key.data is None:
                    if self._stopping.is_set():
                        return
                    self._watch_returned()
                    continue
                if isinstance(key.data, _Connection):  # an idle keep-alive connection has a request (or closed)
                    self._unwatch(key.data)
                    if _api_shut(key.data.context.switch):  # eAPI turned off meanwhile: its connections go too
                        key.data.handler.close()
                        _reset(key.data.sock)
                        continue
                    try:
                        self._pool.submit(self._serve_requests, key.data)
                    except RuntimeError:
                        _reset(key.data.sock)
                    continue
                try:
                    conn, address = key.fileobj.accept()
                except (BlockingIOError, InterruptedError, OSError):
                    continue
                context: _Context = key.data
                if not context.switch.alive or _api_shut(context.switch):
                    _reset(conn)
                    continue
                conn.setblocking(True)
                # headers and body leave in separate writes: without this, Nagle + delayed ACK add 40 ms
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                try:
                    self._pool.submit(self._serve, conn, address, context)
                except RuntimeError:  # pool shut down while stopping
                    _reset(conn)

            self._close_stale()

    def _serve(self, conn: socket.socket, address, context: _Context) -> None:
        try:
            conn.settimeout(_EapiHandler.timeout)
            first = conn.recv(1, socket.MSG_PEEK)
            if not first:
                self._close(conn, context)
                return
            if first[0] == 0x16:  # TLS handshake record: https; anything else is plain http
                conn = self._tls.wrap_socket(conn, server_side=True)
            handler = _OneRequestHandler(conn, address, context)
        except (OSError, ssl.SSLError) as exc:
            logger.debug("%s: eAPI connection from %s ended: %s", context.switch.hostname, address, exc)
            self._close(conn, context)
            return
        self._serve_requests(_Connection(conn, handler, context))

    def _serve_requests(self, connection: _Connection) -> None:
        """Answer the requests this connection has ready; then close it or give it back to the selector idle."""
        handler, context = connection.handler, connection.context
        try:
            while True:
                handler.handle_one_request()
                if handler.close_connection or not context.switch.alive or self._stopping.is_set():
                    break
                if not handler.has_buffered_request():
                    connection.idle_since = time.monotonic()
                    self._rearm.append(connection)
                    with contextlib.suppress(OSError):
                        self._wake_w.send(b"r")
                    return
        except (OSError, ssl.SSLError) as exc:
            logger.debug("%s: eAPI connection ended: %s", context.switch.hostname, exc)
        handler.close()
        self._close(connection.sock, context)

    @staticmethod
    def _close(conn: socket.socket, context: _Context) -> None:
        if context.switch.alive:
            with contextlib.suppress(OSError):
                conn.close()
        else:
            _reset(conn)

    def _close_listeners(self) -> None:
        for sock in self._listeners:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(sock)
            sock.close()
        self._listeners.clear()

    @property
    def thread_count(self) -> int:
        """Threads this server uses right now (acceptor + started workers): the scaling figure to watch."""
        return 1 + len(getattr(self._pool, "_threads", ()))

    def stop(self) -> None:
        if self._stopping.is_set():
            return
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        self._thread.join(timeout=5)
        self._close_listeners()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()
        logger.info("eAPI server stopped")
