"""One CLI session on an emulated CloudEngine: views, the private candidate, commands, confirmations.

The transport (SSH shell or exec) feeds typed lines to :meth:`Session.handle`
and writes back what it returns: command output, VRP ``Error:`` text with its
caret line, ``[Y/N]`` questions, and the next prompt (``<NAME>``, ``[~NAME]``,
``[*NAME-400GE1/0/1]``...).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from fabric_ops.lab.state import SwitchState

from . import displays
from .config import Node, Op, apply_op, apply_ops, diff_lines, identity, render_lines, render_node
from .grammar import CONFIG_EXEC, DISPLAY, USER_EXEC, VIEWS, Context, Failure, Match, match, tokenize, view_suffix
from .platform import VrpError, abort_trial, commit, platform, render_running, rollback, save

EXIT_QUESTION = "Warning: Uncommitted configurations found, commit them before exiting? [Y(yes)/N(no)/C(cancel)]:"
EXIT_RETRY = "Error: Please choose 'YES', 'NO' or 'CANCEL' first before pressing 'Enter'. [Y/N/C]:"
DEFAULT_TRIAL_SECONDS = 600
DEFAULT_SCREEN_LENGTH = 24
MORE = "  ---- More ----"
# What the device writes to wipe the More marker before the next page (backspaces over it, as VRP does).
MORE_ERASE = "\x1b[42D" + " " * len(MORE) + "\x1b[42D"
_FILTER = re.compile(r"^(.*?)\s+\|\s+(include|exclude|begin)\s+(.+)$", re.IGNORECASE)


@dataclass
class Level:
    kind: str
    path: tuple[str, ...]  # configuration headers from the system view down to this view
    suffix: str


class Session:
    """State of one logged-in user; not thread-safe (one transport thread drives it)."""

    def __init__(self, switch: SwitchState, username: str):
        self.switch = switch
        self.state = platform(switch)
        self.username = username
        self.stack: list[Level] = []  # empty: user view
        self.ops: list[Op] = []
        # True once the candidate differs from running: entering an existing view alone keeps "~" (as VRP).
        self.changed = False
        self._cached_candidate: tuple[Node, int, Node] | None = None
        self.pending: Callable[[str], str] | None = None
        self.closed = False
        self.context = Context({name.lower(): name for name in switch.interfaces})
        # Lines per screen before "---- More ----"; VRP's default for a VTY is 24 until ``screen-length 0``.
        self.screen_length = DEFAULT_SCREEN_LENGTH
        self.paging = False
        self._rest: list[str] = []

    # ---- framing ---------------------------------------------------------------------------------------------
    def prompt(self) -> str:
        name = self.state.sysname(self.switch.hostname)
        if not self.stack:
            return f"<{name}>"
        mark = "*" if self.changed else "~"
        return f"[{mark}{name}{self.stack[-1].suffix}]"

    def banner(self) -> str:
        online = len(self.state.sessions)
        login = time.strftime("%Y-%m-%d %H:%M:%S+00:00", time.gmtime())
        return (
            f"\r\nInfo: The max number of VTY users is 21, the number of current VTY users online is {online}, "
            f"and total number of terminal users online is {online}.\r\n"
            f"      The current login time is {login}.\r\n" + self.prompt()
        )

    def drop_candidate(self) -> None:
        self.ops, self.changed = [], False

    def _out(self, lines: list[str]) -> str:
        if self.screen_length and len(lines) > self.screen_length:
            self.paging, self._rest = True, lines[self.screen_length :]
            return "".join(line + "\r\n" for line in lines[: self.screen_length]) + MORE
        body = "".join(line + "\r\n" for line in lines)
        return body + ("" if self.closed else self.prompt())

    def page_key(self, key: str) -> str:
        """A key typed at ``---- More ----``: space shows a page, Enter a line, anything else stops."""
        count = {" ": self.screen_length, "\r": 1, "\n": 1}.get(key, 0)
        if count == 0:
            self.paging, self._rest = False, []
            return MORE_ERASE + self.prompt()
        shown, self._rest = self._rest[:count], self._rest[count:]
        text = MORE_ERASE + "".join(line + "\r\n" for line in shown)
        if self._rest:
            return text + MORE
        self.paging = False
        return text + self.prompt()

    def _error(self, failure: Failure) -> list[str]:
        return [" " * (len(self.prompt()) + failure.column) + "^", failure.message]

    def _ask(self, question: str, on_answer: Callable[[str], str]) -> str:
        self.pending = on_answer
        return question

    # ---- entry point -----------------------------------------------------------------------------------------
    def handle(self, line: str) -> str:
        """Process one typed line; returns the text the device writes back (ending in a prompt or question)."""
        if self.pending is not None:
            handler, self.pending = self.pending, None
            return handler(line.strip())
        if not line.strip():
            return self._out([])
        if not self.stack:
            return self._user_view(line)
        return self._config_view(line)

    def run_exec(self, command: str) -> str:
        """An SSH ``exec`` request: one user-view command, output without prompts or paging."""
        self.screen_length = 0
        output = self._user_view(command)
        return output[: -len(self.prompt())] if output.endswith(self.prompt()) else output

    # ---- user view -------------------------------------------------------------------------------------------
    def _user_view(self, line: str) -> str:
        result = match(USER_EXEC, line, self.context)
        if isinstance(result, Failure):
            return self._out(self._error(result))
        name = result.spec.name
        if name == "system_view":
            self.stack = [Level("system", (), "")]
            return self._out(["Enter system view, return user view with return command."])
        if name == "screen_length":
            self.screen_length = int(result.words[1])
            return self._out(["Info: The configuration takes effect on the current user terminal interface only."])
        if name == "logout":
            self.closed = True
            return ""
        if name == "display":
            return self._out(self._display(result, line))
        if name == "save":
            return self._ask(
                "Warning: The current configuration will be written to the device. Continue? [Y/N]:", self._save_answer
            )
        if name in ("rollback_last", "rollback_to"):
            number = int(result.words[-1])
            return self._ask(
                "Warning: This operation will revert configuration changes to the previous status. Continue? [Y/N]:",
                lambda answer: self._rollback_answer(answer, name, number),
            )
        if name == "abort_trial":
            return self._ask_abort_trial()
        return self._out([])

    def _yes(self, answer: str) -> bool | None:
        lowered = answer.lower()
        if lowered in ("y", "yes"):
            return True
        if lowered in ("n", "no"):
            return False
        return None

    def _save_answer(self, answer: str) -> str:
        if not self._yes(answer):
            return self._out([])
        save(self.switch)
        return self._out(
            ["Now saving the current configuration to the slot 1.", "Info: Save the configuration successfully."]
        )

    def _rollback_answer(self, answer: str, name: str, number: int) -> str:
        if not self._yes(answer):
            return self._out([])
        try:
            if name == "rollback_last":
                rollback(self.switch, self.username, last=number)
            else:
                rollback(self.switch, self.username, commit_id=number)
        except VrpError as exc:
            return self._out([str(exc)])
        return self._out(["Info: Succeeded in rolling back the configuration."])

    def _ask_abort_trial(self) -> str:
        if self.state.trial is None:
            return self._out(["Error: No trial configuration exists."])

        def answer(text: str) -> str:
            if not self._yes(text):
                return self._out([])
            try:
                abort_trial(self.switch)
            except VrpError as exc:
                return self._out([str(exc)])
            return self._out(["Info: The trial configuration rollback succeeded."])

        return self._ask("Warning: The trial configuration will be rolled back. Continue? [Y/N]:", answer)

    # ---- configuration views ---------------------------------------------------------------------------------
    def _config_view(self, line: str) -> str:
        level = self.stack[-1]
        result = match(CONFIG_EXEC + VIEWS[level.kind], line, self.context)
        depth = len(self.stack)
        if isinstance(result, Failure):
            undo = self._undo(line, level)
            if undo is not None:
                return undo
            # VRP runs a command of an enclosing view from inside a sub-view, leaving the sub-view.
            failure = result
            for up in range(len(self.stack) - 2, -1, -1):
                outer = match(VIEWS[self.stack[up].kind], line, self.context)
                if isinstance(outer, Match):
                    result, depth = outer, up + 1
                    break
                if outer.column > failure.column:
                    failure = outer
            else:
                return self._out(self._error(failure))
        del self.stack[depth:]
        if result.spec.name:
            return self._config_exec(result, line)
        refusal = self._dependency_error(result)
        if refusal:
            return self._out([refusal])
        self._record(result)
        return self._out([])

    def _candidate(self) -> Node:
        """Running plus this session's candidate, kept incrementally (a paste checks it once per port)."""
        with self.state.lock:
            running = self.state.running
        cached = self._cached_candidate
        if cached is None or cached[0] is not running or cached[1] > len(self.ops):
            cached = (running, 0, running.copy())
        tree = cached[2]
        for op in self.ops[cached[1] :]:
            apply_op(tree, op)
        self._cached_candidate = (running, len(self.ops), tree)
        return tree

    def _dependency_error(self, result: Match) -> str:
        """What VRP checks when a line is entered: referenced profiles exist, IP addresses go on layer-3 ports."""
        level, words = self.stack[-1], result.words
        if level.kind != "interface":
            return ""
        if words[:2] == ["qos", "queue"] and words[3] == "wred":
            if self._candidate().find(f"drop-profile {words[4]}") is None:
                return f"Error: The drop profile {words[4]} does not exist."
        elif words[:3] == ["dcb", "pfc", "enable"] and len(words) > 3 and words[3] != "mode":
            if self._candidate().find(f"dcb pfc {words[3]}") is None:
                return f"Error: The PFC profile {words[3]} does not exist."
        elif words[:2] == ["ip", "address"] and level.path[0].split()[1] in self.switch.interfaces:
            node = self._candidate().path(level.path)
            if node is None or "undo portswitch" not in [child.text for child in node.children]:
                return "Error: The interface is a Layer 2 interface. Run the undo portswitch command first."
        return ""

    def _record(self, result: Match) -> None:
        level = self.stack[-1]
        spec, text = result.spec, result.text
        if spec.enters:
            with self.state.lock:
                exists = self.state.running.path((*level.path, text)) is not None
            self.changed = self.changed or not exists
            self.ops.append(Op("view", level.path, text))
            self.stack.append(Level(spec.enters, (*level.path, text), view_suffix(spec.enters, result.words)))
        elif not spec.store:
            self.changed = True
            self.ops.append(Op("reset", level.path, key=identity(text, spec.key)))
        else:
            self.changed = True
            self.ops.append(Op("set", level.path, text, identity(text, spec.key)))

    def _undo(self, line: str, level: Level) -> str | None:
        toks = tokenize(line)
        if not toks or len(toks[0][0]) < 2 or not "undo".startswith(toks[0][0].lower()):
            return None
        rest_column = toks[1][1] if len(toks) > 1 else len(line.rstrip()) + 1
        rest = line[rest_column:]
        candidates = [s for s in VIEWS[level.kind] if s.tokens[0].values != ("undo",)]
        result = match(candidates, rest, self.context, partial=True)
        if isinstance(result, Failure):
            result.column += rest_column
            return self._out(self._error(result))
        spec, words = result.spec, result.words
        needed = spec.undo_min or (len(spec.tokens) if spec.enters or not spec.key else spec.key)
        if len(words) < needed:
            return self._out(self._error(Failure("incomplete", len(line.rstrip()) + 1)))
        self.changed = True
        if spec.enters and len(words) == len(spec.tokens):
            self.ops.append(Op("remove_view", level.path, " ".join(words)))
        else:
            self.ops.append(Op("remove", level.path, key=tuple(words)))
        return self._out([])

    def _config_exec(self, result: Match, line: str) -> str:
        name = result.spec.name
        if name == "display":
            return self._out(self._display(result, line))
        if name == "clear_candidate":
            self.drop_candidate()
            return self._out([])
        if name == "abort_trial":
            return self._ask_abort_trial()
        if name in ("commit", "commit_trial"):
            seconds = None
            if name == "commit_trial":
                seconds = int(result.words[2]) if len(result.words) > 2 else DEFAULT_TRIAL_SECONDS
            label = result.words[2] if result.words[1:2] == ["label"] else ""
            return self._out(self._commit(seconds, label))
        if name == "quit" and len(self.stack) > 1:
            self.stack.pop()
            return self._out([])
        # quit from the system view, or return from anywhere: back to the user view.
        if not self.changed:
            self.drop_candidate()
            self.stack = []
            return self._out([])
        return self._ask(EXIT_QUESTION, self._exit_answer)

    def _commit(self, seconds: int | None, label: str = "") -> list[str]:
        ops, changed = self.ops, self.changed
        self.drop_candidate()
        try:
            message = commit(self.switch, ops, self.username, trial_seconds=seconds, label=label)
        except VrpError as exc:
            self.ops, self.changed = ops, changed
            return [str(exc)]
        return [message] if message else []

    def _exit_answer(self, answer: str) -> str:
        lowered = answer.lower()
        if lowered in ("y", "yes"):
            lines = self._commit(None)
            if not self.changed:
                self.stack = []
            return self._out(lines)
        if lowered in ("n", "no"):
            self.drop_candidate()
            self.stack = []
            return self._out([])
        if lowered in ("c", "cancel"):
            return self._out([])
        self.pending = self._exit_answer
        return EXIT_RETRY

    # ---- display ---------------------------------------------------------------------------------------------
    def _display(self, result: Match, line: str) -> list[str]:
        text = result.words[1] if len(result.words) > 1 else ""
        pipe = None
        filtered = _FILTER.match(text)
        if filtered:
            text, pipe = filtered.group(1), (filtered.group(2).lower(), filtered.group(3))
        toks = tokenize(line)
        offset = toks[1][1] if len(toks) > 1 else len(line.rstrip())  # where the words after "display" start
        inner = match(DISPLAY, text, self.context)
        if isinstance(inner, Failure):
            inner.column += offset
            return self._error(inner)
        try:
            lines = self._display_lines(inner)
        except re.error:
            return ["Error: Wrong parameter found at '^' position."]
        if pipe:
            kind, pattern = pipe
            try:
                regex = re.compile(pattern)
            except re.error:
                return self._error(Failure("wrong", len(line) - len(pattern)))
            if kind == "include":
                lines = [item for item in lines if regex.search(item)]
            elif kind == "exclude":
                lines = [item for item in lines if not regex.search(item)]
            else:
                start = next((i for i, item in enumerate(lines) if regex.search(item)), len(lines))
                lines = lines[start:]
        return lines

    def _display_lines(self, result: Match) -> list[str]:
        name, words = result.spec.name, result.words
        switch, state = self.switch, self.state
        with state.lock:
            running = state.running.copy()
        if name == "current":
            with state.lock:
                return render_running(state, displays.version(switch))
        if name == "current_interface":
            return self._block(running, f"interface {words[2]}")
        if name == "this":
            if len(self.stack) <= 1:
                return [*render_lines(running), "return"]
            path = self.stack[-1].path
            node = running.path(path)
            lines = render_node(node, len(path) - 1) if node is not None else []
            return ["#", *lines, "#", "return"]
        if name == "interface_description":
            return displays.display_interface_description(switch, running)
        if name == "version":
            return displays.display_version(switch)
        if name == "interface_brief":
            return displays.display_interface_brief(switch, running)
        if name == "interface":
            names = list(switch.interfaces)
            logical = displays.logical_interfaces(running)
            wanted = [words[1]] if len(words) > 1 else names + logical
            lines: list[str] = []
            for target in wanted:
                if target in switch.interfaces:
                    lines += displays.display_interface(switch, running, target, names.index(target) + 5)
                elif target in logical:
                    lines += displays.display_interface_logical(running, target, 200 + logical.index(target), switch)
                else:
                    return ["Error: The interface does not exist."]
                lines.append("")
            return lines
        if name == "lldp_brief":
            return displays.display_lldp_brief(switch)
        if name == "lldp":
            return displays.display_lldp(switch, [words[3]] if len(words) > 3 else list(switch.interfaces))
        if name == "device":
            return displays.display_device(switch)
        if name == "esn":
            return [f"ESN of slot 1: {displays.serial(switch)}"]
        if name == "transceiver":
            targets = [words[2]] if len(words) > 2 and words[1] == "interface" else list(switch.interfaces)
            return displays.display_transceiver(switch, targets)
        if name == "saved":
            with state.lock:
                return [*render_lines(state.startup), "return"]
        if name == "clock":
            return displays.display_clock()
        if name == "candidate":
            return [*render_lines(apply_ops(running, self.ops)), "return"] if self.ops else []
        if name == "candidate_changes":
            changes = diff_lines(running, apply_ops(running, self.ops)) if self.ops else []
            return ["Building configuration", *changes] if changes else []
        if name == "commit_list":
            with state.lock:
                return displays.display_commit_list(state)
        if name == "commit_changes":
            with state.lock:
                records = list(reversed(state.commits))
            if words[3:4] == ["at"]:
                records = [r for r in records if r.commit_id == int(words[-1])]
                if not records:
                    return ["Error: The specified commit ID does not exist."]
            else:
                records = records[: int(words[-1]) if words[3:4] == ["last"] else 1]
            lines = ["Building configuration"]
            for record in records:
                lines += [f"Commit ID: {record.commit_id}", *diff_lines(record.before, record.after)]
            return lines
        if name == "trial_status":
            with state.lock:
                return displays.display_trial_status(state)
        return []

    def _block(self, running: Node, header: str) -> list[str]:
        node = running.find(header)
        if node is None:
            return ["#", "return"]
        tree = Node("", [node])
        return [*render_lines(tree), "return"]
