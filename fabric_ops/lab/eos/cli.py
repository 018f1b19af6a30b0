"""The eAPI ``runCmds`` engine: one CLI session per request, commands run in order, EOS-style results and errors.

Like eAPI, each request starts a fresh CLI session in unprivileged exec mode (pyeapi sends ``enable``
first); ``configure session NAME`` / ``configure`` change the mode for the following commands of the same
request; the first failing command stops the request with error 1002 and the outputs of the commands
before it in ``data``.
"""

from __future__ import annotations

import itertools
import logging
import re
from dataclasses import dataclass

from fabric_ops.lab.eos import shows
from fabric_ops.lab.eos.config import ConfigTree, Cursor, normalise_interface
from fabric_ops.lab.eos.grammar import CliError, Spec, token_error
from fabric_ops.lab.eos.platform import EosPlatform

__all__ = ["EapiError", "run_cmds"]

logger = logging.getLogger(__name__)

ERR_INVALID_COMMAND = 1002
ERR_UNCONVERTED = 1003


class EapiError(Exception):
    """A JSON-RPC error object, shaped as eAPI returns it."""

    def __init__(self, code: int, message: str, data: list | None = None):
        self.code = code
        self.message = message
        self.data = data
        super().__init__(message)

    def as_json(self) -> dict:
        error = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


class _Unconverted(Exception):
    """A command with no JSON form (EOS answers 'unconverted command' in JSON format)."""


@dataclass
class _Cmd:
    spec: Spec
    name: str
    privileged: bool = True


def _c(spec: str, name: str, privileged: bool = True) -> _Cmd:
    return _Cmd(Spec(spec), name, privileged)


# Exec-mode commands; the order resolves overlaps (first full match wins).
EXEC_COMMANDS: list[_Cmd] = [
    _c("enable", "enable", privileged=False),
    _c("disable", "disable", privileged=False),
    _c("show version", "version", privileged=False),
    _c("show hostname", "hostname", privileged=False),
    _c("show clock", "clock", privileged=False),
    _c("show interfaces status", "status", privileged=False),
    _c("show interfaces counters", "counters", privileged=False),
    _c("show interfaces counters errors", "counters_errors", privileged=False),
    _c("show interfaces transceiver", "transceiver", privileged=False),
    _c("show interfaces transceiver detail", "transceiver_dom", privileged=False),
    _c("show interfaces transceiver dom [thresholds]", "transceiver_dom", privileged=False),
    _c("show interfaces [<word>]", "interfaces", privileged=False),
    _c("show ip interface [<word>]", "ip_interface", privileged=False),
    _c("show ipv6 interface [<word>]", "ipv6_interface", privileged=False),
    _c("show lldp neighbors [<word>] detail", "lldp_detail", privileged=False),
    _c("show lldp neighbors [<word>]", "lldp", privileged=False),
    _c("show system environment cooling", "env_cooling", privileged=False),
    _c("show system environment temperature", "env_temperature", privileged=False),
    _c("show system environment power", "env_power", privileged=False),
    _c("show processes top once", "top", privileged=False),
    _c("show running-config [all] [sanitized]", "running"),
    _c("show running-config diffs", "running_diffs"),
    _c("show running-config section <rest>", "running_section"),
    _c("show running-config interfaces <word>", "running_interface"),
    _c("show startup-config", "startup"),
    _c("show configuration sessions [detail]", "sessions"),
    _c("show session-config [named <word>] [sanitized]", "session_config"),
    _c("show session-config [named <word>] diffs", "session_diffs"),
    _c("configure [terminal]", "configure"),
    _c("configure session [<word>]", "configure_session"),
    _c("configure session <word> commit [timer <hhmmss>]", "session_commit"),
    _c("configure session <word> abort", "session_abort"),
    _c("configure replace <word> [force]", "configure_replace"),
    _c("copy <word> <word>", "copy"),
    _c("write [memory]", "write"),
]

# Commands available inside a configuration session besides configuration lines.
SESSION_COMMANDS: list[_Cmd] = [
    _c("commit [timer <hhmmss>]", "commit"),
    _c("abort", "abort"),
    _c("rollback clean-config", "clean_config"),
    _c("end", "end"),
]
_SESSION_FIRST_WORDS = ("commit", "abort", "rollback", "end")


def _may_be_session_command(first: str, autocomplete: bool) -> bool:
    """Cheap pre-check so that the ~1,000 configuration lines of a push skip the session-command grammar."""
    lowered = first.lower()
    if autocomplete:
        return any(word.startswith(lowered) for word in _SESSION_FIRST_WORDS)
    return lowered in _SESSION_FIRST_WORDS


def _seconds(hhmmss: str) -> int:
    hours, minutes, seconds = (int(x) for x in hhmmss.split(":"))
    return hours * 3600 + minutes * 60 + seconds


class CliSession:
    """One eAPI request's CLI session."""

    def __init__(self, platform: EosPlatform, user: str, autocomplete: bool = False):
        self.platform = platform
        self.user = user
        self.autocomplete = autocomplete
        self.privileged = False
        self.tree: ConfigTree | None = None  # what configuration lines edit (running or a session's)
        self.session_name: str | None = None
        self.cursor: Cursor | None = None
        self.running_dirty = False
        self.fmt = "json"  # of the command being run (handlers skip the form that will not be returned)

    # --- dispatch ---------------------------------------------------------------------------------------------

    def execute(self, command: str, fmt: str, heredoc: str | None = None) -> dict:
        text, _, pipe = command.partition(" | ")
        tokens = text.split()
        if not tokens:
            return {} if fmt == "json" else {"output": ""}
        if tokens[0].lower() == "comment" or text.strip().startswith("!"):
            return {} if fmt == "json" else {"output": ""}
        self.fmt = fmt
        if self.cursor is not None:
            return self._config_mode(text, tokens, fmt, heredoc, pipe)
        return self._exec(text, tokens, fmt, pipe)

    def _match(self, table: list[_Cmd], tokens: list[str]) -> tuple[_Cmd | None, int, list[str]]:
        """The first command whose syntax fits; the tokens come back with abbreviations completed."""
        best = 0
        for cmd in table:
            ok, reached, expanded = cmd.spec.expand(tokens, self.autocomplete)
            if ok:
                return cmd, len(tokens), expanded
            best = max(best, reached)
        return None, best, tokens

    def _exec(self, text: str, tokens: list[str], fmt: str, pipe: str) -> dict:
        cmd, reached, expanded = self._match(EXEC_COMMANDS, tokens)
        if cmd is None:
            raise token_error(tokens, reached)
        tokens = expanded
        if cmd.privileged and not self.privileged:
            raise CliError("Invalid input (privileged mode required)")
        handler = getattr(self, f"_do_{cmd.name}")
        try:
            result = handler(tokens)
        except _Unconverted:
            if fmt == "json":
                raise
            result = None
        if isinstance(result, str):
            output = _pipe(result, pipe) if pipe else result
            if fmt == "json":
                raise _Unconverted(text)
            return {"output": output}
        if result is None:
            return {} if fmt == "json" else {"output": ""}
        data, render = result
        if fmt == "json":
            if pipe:
                raise CliError("Cannot use pipe with json output")
            return data
        output = render(data)
        return {"output": _pipe(output, pipe) if pipe else output}

    def _config_mode(self, text: str, tokens: list[str], fmt: str, heredoc: str | None = None, pipe: str = "") -> dict:
        lowered = [t.lower() for t in tokens]
        empty: dict = {} if fmt == "json" else {"output": ""}
        if lowered[0] == "show":
            saved, self.cursor = self.cursor, None
            try:
                return self._exec(text, tokens, fmt, pipe)
            finally:
                self.cursor = saved
        if lowered == ["end"] or (lowered == ["exit"] and len(self.cursor.stack) == 1):
            self._leave_config()
            return empty
        if self.session_name is not None and _may_be_session_command(tokens[0], self.autocomplete):
            cmd, _, tokens = self._match(SESSION_COMMANDS, tokens)
            if cmd is not None and cmd.name == "commit":
                name = self.session_name
                self._leave_config()
                self.platform.commit(name, _seconds(tokens[2]) if len(tokens) == 3 else None)
                return empty
            if cmd is not None and cmd.name == "abort":
                name = self.session_name
                self._leave_config()
                self.platform.abort(name)
                return empty
            if cmd is not None and cmd.name == "clean_config":
                with self.platform.lock:
                    session = self._editable_session()
                    session.config = self.platform.clean_config()
                    self.tree = session.config
                    self.cursor = self.tree.cursor()
                return empty
        with self.platform.lock:
            if self.session_name is not None:
                self._editable_session()
            else:
                self._follow_running()
            try:
                self.tree.apply(self.cursor, text, heredoc, self.autocomplete)
            finally:
                self.platform.edited(self.tree)
        if self.session_name is None:
            self.running_dirty = True
        return empty

    def _editable_session(self):
        """The session this CLI edits; once committed (or gone) it takes no more lines: its tree may be running."""
        session = self.platform.sessions.get(self.session_name)
        if session is None:
            raise CliError(f"Session {self.session_name} does not exist")
        if session.state != "pending":
            raise CliError(f"Cannot enter session {self.session_name} (session has already been committed)")
        return session

    def _follow_running(self) -> None:
        """``configure terminal`` edits the running tree in place: make sure it is ours alone (copy-on-write).

        If the running tree was copied (or replaced) since the previous line, the cursor's open sections are
        found again in the new tree by their positions, so the next line lands where it would have.
        """
        tree = self.platform.writable_running()
        if tree is self.tree:
            return
        old_stack = self.cursor.stack
        node = tree.root
        stack = [node]
        for parent, child in itertools.pairwise(old_stack):
            try:
                index = next(i for i, c in enumerate(parent.children) if c is child)
                node = node.children[index]
            except (StopIteration, IndexError):
                break  # the section is gone (a replace or revert meanwhile): continue at the top level
            stack.append(node)
        self.tree = tree
        self.cursor = tree.cursor()
        self.cursor.stack[:] = stack

    def _leave_config(self) -> None:
        self.cursor = None
        self.tree = None
        self.session_name = None

    def finish(self) -> None:
        """End of request: direct (non-session) edits take effect now, like leaving config mode."""
        if self.running_dirty:
            self.platform.apply_effects()
            self.running_dirty = False
        self._leave_config()

    # --- exec handlers ----------------------------------------------------------------------------------------

    def _do_enable(self, tokens):
        self.privileged = True

    def _do_disable(self, tokens):
        self.privileged = False

    def _do_version(self, tokens):
        return shows.show_version(self.platform), shows.text_version

    def _do_hostname(self, tokens):
        return shows.show_hostname(self.platform), lambda d: f"Hostname: {d['hostname']}\nFQDN:     {d['fqdn']}\n"

    def _do_clock(self, tokens):
        return shows.show_clock(), shows.text_clock

    def _do_env_cooling(self, tokens):
        return shows.show_environment_cooling(self.platform), shows.generic_text

    def _do_env_temperature(self, tokens):
        return shows.show_environment_temperature(self.platform), shows.generic_text

    def _do_env_power(self, tokens):
        return shows.show_environment_power(self.platform), shows.generic_text

    def _do_top(self, tokens):
        return shows.processes_top_text(self.platform)

    def _do_status(self, tokens):
        return shows.show_interfaces_status(self.platform), shows.text_interfaces_status

    def _do_counters(self, tokens):
        return shows.show_interfaces_counters(self.platform), shows.generic_text

    def _do_counters_errors(self, tokens):
        return shows.show_interfaces_counters_errors(self.platform), shows.generic_text

    def _do_transceiver(self, tokens):
        return shows.show_transceiver(self.platform), shows.text_transceiver

    def _do_transceiver_dom(self, tokens):
        return shows.show_transceiver_dom(self.platform, tokens[-1].lower() == "thresholds"), shows.generic_text

    def _interface_arg(self, tokens: list[str], index: int) -> str | None:
        if len(tokens) <= index:
            return None
        name = normalise_interface(tokens[index])
        known = set(self.platform.running.physical) | {"Management1"}
        known |= {n.key[10:] for n in self.platform.running.root.children if n.key.startswith("interface ")}
        if name is None or name not in known:
            raise token_error(tokens, index)
        return name

    def _do_interfaces(self, tokens):
        return shows.show_interfaces(self.platform, self._interface_arg(tokens, 2)), shows.text_interfaces

    def _do_ip_interface(self, tokens):
        data = shows.show_ip_interface(self.platform)
        only = self._interface_arg(tokens, 3)
        if only:
            data = {"interfaces": {k: v for k, v in data["interfaces"].items() if k == only}}
        return data, shows.generic_text

    def _do_ipv6_interface(self, tokens):
        raise CliError("No IPv6 configured interfaces")

    def _do_lldp(self, tokens):
        data = shows.show_lldp_neighbors(self.platform)
        only = self._interface_arg(tokens, 3)
        if only:
            data["lldpNeighbors"] = [n for n in data["lldpNeighbors"] if n["port"] == only]
        return data, shows.text_lldp_neighbors

    def _do_lldp_detail(self, tokens):
        only = self._interface_arg(tokens, 3) if len(tokens) == 5 else None
        return shows.show_lldp_neighbors_detail(self.platform, only), shows.generic_text

    def _do_running(self, tokens):
        lowered = [t.lower() for t in tokens]
        if self.fmt == "json":  # the structured form only: rendering the text too would be thrown away
            with self.platform.lock:
                return self.platform.running.as_json(), None
        with self.platform.lock:
            if "all" in lowered:
                text = shows.running_all_text(self.platform)
            else:
                text = shows.running_text(self.platform, " ".join(tokens))
        if "sanitized" in lowered:
            text = shows.sanitize(text)
        return None, lambda _d: text

    def _do_running_diffs(self, tokens):
        with self.platform.lock:
            return shows.running_diffs(self.platform)

    def _do_running_section(self, tokens):
        with self.platform.lock:
            return _pipe(shows.running_text(self.platform), "section " + " ".join(tokens[3:]))

    def _do_running_interface(self, tokens):
        name = self._interface_arg(tokens, 3)
        with self.platform.lock:
            lines = self.platform.lines_of(self.platform.running)
        return _pipe("\n".join(lines) + "\n", f"section interface {name}$")

    def _do_startup(self, tokens):
        with self.platform.lock:
            return shows.startup_text(self.platform)

    def _do_sessions(self, tokens):
        with self.platform.lock:
            return shows.show_sessions(self.platform, detail=tokens[-1].lower() == "detail"), shows.text_sessions

    def _named_session(self, tokens: list[str]) -> str:
        lowered = [t.lower() for t in tokens]
        if "named" in lowered:
            return tokens[lowered.index("named") + 1]
        if self.session_name is None:
            raise CliError("No configuration session is active")
        return self.session_name

    def _do_session_config(self, tokens):
        name = self._named_session(tokens)
        with self.platform.lock:
            session = self.platform.sessions.get(name)
            if session is None:
                raise CliError(f"Session {name} does not exist")
            text = shows.running_text(self.platform, "show session-config", session.config)
        if tokens[-1].lower() == "sanitized":
            text = shows.sanitize(text)
        return text

    def _do_session_diffs(self, tokens):
        name = self._named_session(tokens)
        with self.platform.lock:
            if name not in self.platform.sessions:
                raise CliError(f"Session {name} does not exist")
            return shows.session_diff(self.platform, name)

    def _do_configure(self, tokens):
        self.tree = self.platform.writable_running()
        self.cursor = self.tree.cursor()

    def _do_configure_session(self, tokens):
        name = tokens[2] if len(tokens) > 2 else f"session{id(self) % 100000}"
        session = self.platform.open_session(name, self.user)
        self.session_name = name
        self.tree = session.config
        self.cursor = self.tree.cursor()

    def _do_session_commit(self, tokens):
        self.platform.commit(tokens[2], _seconds(tokens[5]) if len(tokens) == 6 else None)

    def _do_session_abort(self, tokens):
        self.platform.abort(tokens[2])

    def _do_configure_replace(self, tokens):
        self.platform.replace(tokens[2])

    def _do_copy(self, tokens):
        self.platform.copy(tokens[1], tokens[2])
        return "Copy completed successfully.\n"

    def _do_write(self, tokens):
        self.platform.write_memory()
        return "Copy completed successfully.\n"


def _pipe(text: str, pipe: str) -> str:
    """``| include RE``, ``| exclude RE``, ``| begin RE``, ``| section RE`` as the EOS CLI filters output."""
    verb, _, pattern = pipe.strip().partition(" ")
    regex = re.compile(pattern.strip())
    lines = text.splitlines()
    if verb == "include":
        kept = [line for line in lines if regex.search(line)]
    elif verb == "exclude":
        kept = [line for line in lines if not regex.search(line)]
    elif verb == "begin":
        start = next((n for n, line in enumerate(lines) if regex.search(line)), len(lines))
        kept = lines[start:]
    elif verb == "section":
        kept = []
        keep_block = False
        for line in lines:
            top = not line.startswith(" ")
            if top:
                keep_block = bool(regex.search(line))
                if keep_block:
                    kept.append(line)
            elif keep_block or regex.search(line):
                kept.append(line)
    else:
        raise CliError(f"Invalid input (at token 0: '{verb}')")
    return "\n".join(kept) + ("\n" if kept else "")


def run_cmds(platform: EosPlatform, user: str, params: dict) -> list:
    """Execute a ``runCmds`` request; return the result list or raise :class:`EapiError`."""
    version = params.get("version", 1)
    if version not in (1, "latest"):
        raise EapiError(-32602, f"Invalid params: unsupported version {version!r}")
    fmt = params.get("format") or "json"
    if fmt not in ("json", "text"):
        raise EapiError(-32602, f"Invalid params: unsupported format {fmt!r}")
    cmds = params.get("cmds")
    if not isinstance(cmds, list) or not cmds:
        raise EapiError(-32602, "Invalid params: 'cmds' must be a non-empty list")
    session = CliSession(platform, user, autocomplete=params.get("autoComplete") is True)
    results: list = []
    try:
        for index, item in enumerate(cmds, start=1):
            command = item.get("cmd", "") if isinstance(item, dict) else str(item)
            heredoc = item.get("input") if isinstance(item, dict) else None
            try:
                results.append(session.execute(command, fmt, heredoc))
            except CliError as exc:
                failed = {"errors": [exc.message]}
                if fmt == "text":
                    failed["output"] = f"% {exc.message}\n"
                invalid = exc.message.startswith(("Invalid input", "Incomplete"))
                kind = "invalid command" if invalid else "could not run command"
                logger.debug("%s: eAPI command %r failed: %s", platform.switch.hostname, command, exc.message)
                raise EapiError(
                    ERR_INVALID_COMMAND,
                    f"CLI command {index} of {len(cmds)} '{command}' failed: {kind}",
                    [*results, failed],
                ) from exc
            except _Unconverted as exc:
                raise EapiError(
                    ERR_UNCONVERTED,
                    f"CLI command {index} of {len(cmds)} '{command}' failed: unconverted command",
                    [*results, {"errors": ["This is an unconverted command"]}],
                ) from exc
    finally:
        session.finish()
    return results
