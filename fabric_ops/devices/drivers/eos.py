"""NAPALM's own ``eos`` driver, used as NAPALM documents it, with two changes in *how* it talks eAPI.

What the driver does is unchanged (the same configure session, the same commit timer, the same checks
before a commit and before a confirm); only round trips that carry no extra information are folded:

* **Keep-alive transport** (:class:`KeepAliveHttpsEapiConnection`, passed as NAPALM's ``transport`` optional
  argument, which accepts an ``EapiConnection`` subclass): pyeapi closes its HTTPS connection after every
  request, so every call of a push paid a TCP and TLS handshake. This transport keeps the connection of one
  driver session between requests (reused only within ``FABRIC_OPS_EAPI_KEEPALIVE_S`` seconds of the last
  one, 2 by default, far below any server's idle timeout) and closes it with the driver.
* **Pending commit-confirm check in one request** (:meth:`FabricOpsEOSDriver._get_pending_commits`): NAPALM
  asks ``show configuration sessions detail`` and then ``show version`` (for the uptime the commit timer is
  relative to) in two requests, before every ``commit_config(revert_in=...)`` and every ``confirm_commit``.
  Both commands go in one request here; the answer is interpreted exactly as NAPALM does (both EOS formats).
"""

from __future__ import annotations

import json
import os
import time

from napalm.eos.eos import EOSDriver
from pyeapi.eapilib import CommandError, HttpsEapiConnection
from pyeapi.eapilib import ConnectionError as EapiConnectionError

__all__ = ["FabricOpsEOSDriver", "KeepAliveHttpsEapiConnection"]

EAPI_PATH = "/command-api"


def _keepalive_seconds() -> float:
    return float(os.environ.get("FABRIC_OPS_EAPI_KEEPALIVE_S", "2"))


class KeepAliveHttpsEapiConnection(HttpsEapiConnection):
    """pyeapi's HTTPS eAPI connection that keeps its TCP/TLS connection between requests.

    Same request, same errors as pyeapi's ``send`` (``CommandError`` from the switch's JSON-RPC error,
    ``ConnectionError`` for transport failures and HTTP 401). A connection idle for longer than the keep-alive
    limit is replaced before use, and a request is only ever sent once: if writing it on a reused connection
    fails, it goes out on a fresh connection; once written, a failure is reported, never retried (a commit
    must not be sent twice).
    """

    # pyeapi's signature, spelled out: NAPALM picks the optional arguments it passes by inspecting it
    def __init__(self, host, port=None, path=None, username=None, password=None, context=None, timeout=60, **kwargs):
        super().__init__(host, port, path, username, password, context, timeout, **kwargs)
        self.keepalive_s = _keepalive_seconds()
        self._last_used: float | None = None

    def _write(self, body: bytes) -> None:
        self.transport.putrequest("POST", EAPI_PATH)
        self.transport.putheader("Content-type", "application/json-rpc")
        self.transport.putheader("Content-length", str(len(body)))
        if self._auth:
            self.transport.putheader(*self._auth)
        self.transport.endheaders(message_body=body)

    def send(self, data: str) -> dict:
        body = data.encode()
        fresh = self._last_used is None or time.monotonic() - self._last_used > self.keepalive_s
        if fresh or self.keepalive_s <= 0:
            self.transport.close()  # no-op without a socket; http.client connects on the next request
        try:
            try:
                self._write(body)
            except OSError:
                if fresh:
                    raise
                self.transport.close()  # the reused connection was gone before the request left: a new one
                self._write(body)
            response = self.transport.getresponse()
            content = response.read().decode()
        except OSError as exc:
            self.close()
            self.socket_error = self.error = exc
            raise EapiConnectionError(str(self), f"Socket error during eAPI connection: {exc}") from exc
        self._last_used = time.monotonic()
        if response.will_close or self.keepalive_s <= 0:
            self.close()
        if response.status == 401:
            self.close()
            raise EapiConnectionError(str(self), f"{response.reason}. {content}")
        try:
            decoded = json.loads(content)
        except ValueError as exc:
            self.close()
            self.socket_error, self.error = None, exc
            raise EapiConnectionError(str(self), "unable to connect to eAPI") from exc
        if "error" in decoded:
            code, message, error, output = self._parse_error_message(decoded)
            raise CommandError(code, message, command_error=error, output=output)
        return decoded

    def close(self) -> None:
        """Called by NAPALM's ``close()`` (it closes ``device.connection`` when that has a ``close``)."""
        self.transport.close()
        self._last_used = None


class FabricOpsEOSDriver(EOSDriver):
    """NAPALM's ``eos`` driver; the pending commit-confirm check asks its two commands in one request."""

    def _get_pending_commits(self) -> dict[str, int]:
        """Sessions with a pending commit timer -> seconds left (-1 when unknown), as NAPALM computes it."""
        config_sessions, version = self._run_commands(["show configuration sessions detail", "show version"])
        uptime = version.get("uptime", -1)
        pending: dict[str, int] = {}

        def seconds_left(commit_by) -> int:
            if commit_by == -1 or uptime == -1 or uptime >= commit_by:
                return -1
            return round(commit_by - uptime)

        if "commitTimerSessionName" in config_sessions:  # EOS >= 4.32
            pending[config_sessions["commitTimerSessionName"]] = seconds_left(config_sessions["commitTimerExpireTime"])
        else:
            for name, session in config_sessions["sessions"].items():
                if "pendingCommitTimer" in session["state"]:
                    pending[name] = seconds_left(session.get("commitBy", -1))
        return pending

    def drop_connection(self) -> None:
        """Make the next eAPI request open a new TCP + TLS connection: post-commit verification must prove the
        switch still accepts one, which the kept-alive connection does not. A no-op before ``open()``."""
        close = getattr(getattr(self.device, "connection", None), "close", None)
        if callable(close):
            close()
