"""SSH front end for emulated CloudEngine switches: many listeners, one accept loop.

Every switch listens on its own ``mgmt_address:ssh_port``. One thread waits on
all listening sockets with :mod:`selectors` and hands each accepted socket to
a paramiko :class:`~paramiko.Transport` (which runs its own thread); each shell
or exec channel gets a thread running a :class:`~.cli.Session`. A switch whose
``alive`` flag drops has its sessions closed and its listener closed (new
connections are refused) until the flag comes back.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import threading
from pathlib import Path

import paramiko
from django.conf import settings

from fabric_ops.devices.credentials import Credential
from fabric_ops.errors import LabError
from fabric_ops.lab.state import SwitchState

from .cli import Session
from .platform import platform

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.2
TRANSPORT_LOGGER = "fabric_ops.lab.huawei_vrp.transport"
logging.getLogger(TRANSPORT_LOGGER).setLevel(logging.CRITICAL)
_host_key_lock = threading.Lock()


def host_key() -> paramiko.RSAKey:
    """The lab's SSH host key, generated once under ``var/lab/`` so clients see a stable key."""
    path = Path(settings.VAR_DIR) / "lab" / "ssh_host_rsa_key"
    with _host_key_lock:
        if path.exists():
            return paramiko.RSAKey.from_private_key_file(str(path))
        path.parent.mkdir(parents=True, exist_ok=True)
        key = paramiko.RSAKey.generate(2048)
        tmp = path.with_suffix(".tmp")
        key.write_private_key_file(str(tmp))
        tmp.chmod(0o600)
        tmp.replace(path)
        return key


class _ServerInterface(paramiko.ServerInterface):
    """Password authentication against the lab credential; shell, pty and exec channels."""

    def __init__(self, server: LabServer, switch: SwitchState):
        self.server = server
        self.switch = switch
        self.username = ""

    def get_allowed_auths(self, username: str) -> str:
        return "password"

    def check_auth_password(self, username: str, password: str) -> int:
        credential = self.server.credential
        if username == credential.username and password == credential.password and self.switch.alive:
            self.username = username
            return paramiko.AUTH_SUCCESSFUL
        logger.info("%s: SSH login refused for %r", self.switch.hostname, username)
        return paramiko.AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        return paramiko.OPEN_SUCCEEDED if kind == "session" else paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_pty_request(self, channel, term, width, height, pixelwidth, pixelheight, modes) -> bool:
        return True

    def check_channel_window_change_request(self, channel, width, height, pixelwidth, pixelheight) -> bool:
        return True

    def check_channel_shell_request(self, channel: paramiko.Channel) -> bool:
        self.server._start_session(self.switch, self.username, channel, None)
        return True

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        self.server._start_session(self.switch, self.username, channel, command.decode(errors="replace"))
        return True


class LabServer:
    """SSH listeners for a set of switches; :meth:`stop` closes everything."""

    def __init__(self, switches: list[SwitchState], credential: Credential):
        self.switches = list(switches)
        self.credential = credential
        self.key = host_key()
        self._selector = selectors.DefaultSelector()
        self._listeners: dict[str, socket.socket] = {}
        self._transports: dict[str, set[paramiko.Transport]] = {s.hostname: set() for s in self.switches}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        try:
            for switch in self.switches:
                if switch.alive:
                    self._listen(switch)
        except LabError:
            for switch in self.switches:  # do not leave the ports bound so far behind
                self._unlisten(switch)
            self._selector.close()
            raise
        self._thread = threading.Thread(target=self._loop, name="vrp-ssh-accept", daemon=True)
        self._thread.start()

    # ---- listeners -------------------------------------------------------------------------------------------
    def _listen(self, switch: SwitchState) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((switch.mgmt_address, switch.ssh_port))
        except OSError as exc:
            sock.close()
            address = f"{switch.mgmt_address}:{switch.ssh_port}"
            raise LabError(f"{switch.hostname}: cannot listen on {address}: {exc}") from exc
        sock.listen(64)
        sock.setblocking(False)
        self._listeners[switch.hostname] = sock
        self._selector.register(sock, selectors.EVENT_READ, switch)

    def _unlisten(self, switch: SwitchState) -> None:
        sock = self._listeners.pop(switch.hostname, None)
        if sock is not None:
            self._selector.unregister(sock)
            sock.close()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            for key, _ in self._selector.select(timeout=POLL_SECONDS):
                switch: SwitchState = key.data
                try:
                    conn, _addr = key.fileobj.accept()  # type: ignore[union-attr]
                except OSError:
                    continue
                self._accept(switch, conn)
            self._check_alive()

    def _check_alive(self) -> None:
        for switch in self.switches:
            listening = switch.hostname in self._listeners
            if not switch.alive and listening:
                logger.info("%s: down, closing SSH sessions and listener", switch.hostname)
                self._close_transports(switch.hostname)
                self._unlisten(switch)
            elif switch.alive and not listening:
                try:
                    self._listen(switch)
                except LabError as exc:
                    logger.warning("%s", exc)

    def _accept(self, switch: SwitchState, conn: socket.socket) -> None:
        conn.setblocking(True)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport = paramiko.Transport(conn)
        transport.local_version = "SSH-2.0--"  # what CloudEngine announces
        transport.add_server_key(self.key)
        # Clients that drop the TCP connection make paramiko log tracebacks at ERROR; in a lab that is routine.
        transport.set_log_channel(TRANSPORT_LOGGER)
        with self._lock:
            live = self._transports[switch.hostname]
            live.difference_update([t for t in live if not t.is_active()])  # finished sessions: forget them
            live.add(transport)
        try:
            transport.start_server(event=threading.Event(), server=_ServerInterface(self, switch))
        except (paramiko.SSHException, OSError, EOFError) as exc:
            logger.info("%s: SSH negotiation failed: %s", switch.hostname, exc)
            self._forget(switch.hostname, transport)

    def _forget(self, hostname: str, transport: paramiko.Transport) -> None:
        with self._lock:
            self._transports.get(hostname, set()).discard(transport)
        transport.close()

    def _close_transports(self, hostname: str) -> None:
        with self._lock:
            transports = list(self._transports.get(hostname, ()))
            self._transports[hostname] = set()
        for transport in transports:
            transport.close()

    # ---- sessions --------------------------------------------------------------------------------------------
    def _start_session(self, switch: SwitchState, username: str, channel: paramiko.Channel, command: str | None):
        thread = threading.Thread(
            target=self._run_session,
            args=(switch, username, channel, command),
            name=f"vrp-cli-{switch.hostname}",
            daemon=True,
        )
        thread.start()

    def _run_session(self, switch: SwitchState, username: str, channel: paramiko.Channel, command: str | None):
        state = platform(switch)
        session = Session(switch, username)
        with state.lock:
            state.sessions.add(session)
        try:
            if command is not None:
                channel.sendall(session.run_exec(command).encode())
                channel.send_exit_status(0)
                # Let the client close first: closing now can overtake paramiko's reply to the exec request,
                # and the client would see "Channel closed" instead of the output.
                channel.shutdown_write()
                channel.settimeout(5)
                with contextlib.suppress(TimeoutError):
                    while channel.recv(1024):
                        pass
                return
            channel.sendall(session.banner().encode())
            self._shell(session, channel)
        except (OSError, EOFError, paramiko.SSHException) as exc:
            logger.debug("%s: session ended: %s", switch.hostname, exc)
        finally:
            with state.lock:
                state.sessions.discard(session)
            with contextlib.suppress(OSError, EOFError):  # the client may have gone first
                channel.close()

    def _shell(self, session: Session, channel: paramiko.Channel) -> None:
        """Echo typed characters like a terminal and run each completed line."""
        buffer = ""
        last_cr = False
        channel.settimeout(POLL_SECONDS * 5)
        while not session.closed and not self._stopping.is_set():
            if not session.switch.alive:
                return
            try:
                data = channel.recv(4096)
            except TimeoutError:  # socket.timeout is TimeoutError since Python 3.10
                continue
            if not data:
                return
            echo: list[str] = []
            for char in data.decode(errors="replace"):
                if session.paging:
                    if char == "\n" and last_cr:
                        last_cr = False
                        continue
                    last_cr = char == "\r"
                    echo.append(session.page_key(char))
                    continue
                if char == "\n" and last_cr:
                    last_cr = False
                    continue
                last_cr = char == "\r"
                if char in "\r\n":
                    # Echo and reply leave in one packet: half the SSH messages when a client pastes many lines.
                    echo.append("\r\n")
                    line, buffer = buffer, ""
                    echo.append(session.handle(line))
                    channel.sendall("".join(echo).encode())
                    echo = []
                    if session.closed:
                        return
                elif char in "\x08\x7f":
                    if buffer:
                        buffer = buffer[:-1]
                        echo.append("\x08 \x08")
                elif char == "\x03":  # Ctrl+C: abandon the line
                    buffer = ""
                    echo.append("^C\r\n" + session.prompt())
                elif char.isprintable() or char == "\t":
                    buffer += char
                    echo.append(char)
            if echo:
                channel.sendall("".join(echo).encode())

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)
        for switch in self.switches:
            self._unlisten(switch)
            self._close_transports(switch.hostname)
        self._selector.close()
