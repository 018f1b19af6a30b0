"""The command grammar the emulated CloudEngine accepts, and VRP's way of rejecting the rest.

Patterns are written the way Huawei's command references write formats:
keywords, ``{a|b}`` choices, ``{a|b}*`` one-or-more, ``[ ... ]`` optional groups
(not nested) and typed parameters ``<int:lo-hi>``, ``<ipv4>``, ``<mask>``,
``<word>``, ``<text>`` (rest of the line) and ``<if>`` (an interface of this
switch, written ``400GE1/0/1`` or ``400GE 1/0/1``). Keywords may be abbreviated
while unambiguous, as on the real CLI. A line that does not match produces
the VRP error for the first bad token with its caret position.
"""

from __future__ import annotations

import ipaddress
import itertools
import re
from dataclasses import dataclass, field

ERRORS = {
    "unrecognized": "Error: Unrecognized command found at '^' position.",
    "wrong": "Error: Wrong parameter found at '^' position.",
    "incomplete": "Error: Incomplete command found at '^' position.",
    "toomany": "Error: Too many parameters found at '^' position.",
    "ambiguous": "Error: Ambiguous command found at '^' position.",
}

_LOGICAL_TYPES = {"loopback": ("LoopBack", 0, 1023), "eth-trunk": ("Eth-Trunk", 0, 1023), "vlanif": ("Vlanif", 1, 4094)}
_IF_ONE = re.compile(r"^([A-Za-z0-9-]*?[A-Za-z-])(\d+(?:/\d+)*)$")
_IF_TYPE = re.compile(r"^[A-Za-z0-9-]*[A-Za-z-]$")
_IF_NUM = re.compile(r"^\d+(?:/\d+)*$")


@dataclass(frozen=True)
class Tok:
    kind: str  # kw | choice | multi | int | ipv4 | mask | word | text | if
    values: tuple[str, ...] = ()
    lo: int = 0
    hi: int = 0


@dataclass(frozen=True)
class Spec:
    """One accepted command form.

    ``key`` is how many leading tokens identify the stored line (0: the whole
    line), so ``mtu 9216`` replaces ``mtu 1500``; ``enters`` names the view the
    command opens; ``store=False`` marks a command that restores a default;
    ``name`` marks an operational command the CLI executes instead of storing.
    """

    pattern: str
    tokens: tuple[Tok, ...]
    key: int = 0
    enters: str | None = None
    store: bool = True
    undo_min: int | None = None
    name: str = ""


@dataclass
class Context:
    """What parameters are checked against: this switch's interfaces."""

    interfaces: dict[str, str] = field(default_factory=dict)  # lower-case name -> canonical name

    def interface(self, kind: str, number: str) -> str | None:
        lower = kind.lower()
        if lower in _LOGICAL_TYPES:
            canonical, lo, hi = _LOGICAL_TYPES[lower]
            if number.isdigit() and lo <= int(number) <= hi:
                return f"{canonical}{int(number)}"
            return None
        return self.interfaces.get(f"{lower}{number}")


@dataclass
class Match:
    spec: Spec
    words: list[str]  # normalised tokens (keywords in full, interface names canonical)
    exact: int  # how many keywords were typed in full, to rank competing matches

    @property
    def text(self) -> str:
        return " ".join(self.words)


@dataclass
class Failure:
    kind: str
    column: int  # character offset of the offending token in the typed line

    @property
    def message(self) -> str:
        return ERRORS[self.kind]


def _parse_token(word: str) -> Tok:
    if word.startswith("{") and word.endswith("}*"):
        return Tok("multi", tuple(word[1:-2].split("|")))
    if word.startswith("{") and word.endswith("}"):
        return Tok("choice", tuple(word[1:-1].split("|")))
    if word.startswith("<int:"):
        lo, hi = word[5:-1].split("-")
        return Tok("int", lo=int(lo), hi=int(hi))
    if word.startswith("<") and word.endswith(">"):
        return Tok(word[1:-1])
    return Tok("kw", (word,))


def specs(pattern: str, **options) -> list[Spec]:
    """All forms of ``pattern`` with its ``[ ... ]`` optional groups expanded."""
    parts = re.findall(r"\[[^\]]*\]|\S+", pattern)
    optional = [i for i, part in enumerate(parts) if part.startswith("[")]
    out = []
    for mask in itertools.product((False, True), repeat=len(optional)):
        chosen = dict(zip(optional, mask, strict=True))
        words: list[str] = []
        for i, part in enumerate(parts):
            if i in chosen:
                if chosen[i]:
                    words.extend(part[1:-1].split())
            else:
                words.append(part)
        out.append(Spec(" ".join(words), tuple(_parse_token(w) for w in words), **options))
    return out


def tokenize(line: str) -> list[tuple[str, int]]:
    return [(m.group(0), m.start()) for m in re.finditer(r"\S+", line)]


def _keyword(typed: str, keyword: str) -> bool:
    return keyword.startswith(typed.lower())


def _match_spec(spec: Spec, toks: list[tuple[str, int]], line: str, ctx: Context, partial: bool):
    """Returns Match, or (failing token index, kind) — index == len(toks) means the input ended early."""
    words: list[str] = []
    exact = 0
    i = 0
    for t_index, tok in enumerate(spec.tokens):
        if i >= len(toks):
            if partial and t_index > 0:
                return Match(spec, words, exact)
            return (i, "incomplete")
        typed, column = toks[i]
        if tok.kind == "kw":
            if not _keyword(typed, tok.values[0]):
                return (i, "unrecognized")
            exact += typed.lower() == tok.values[0]
            words.append(tok.values[0])
            i += 1
        elif tok.kind in ("choice", "multi"):
            hits = [v for v in tok.values if _keyword(typed, v)]
            exact_hit = [v for v in hits if v == typed.lower()]
            if not hits:
                return (i, "wrong" if tok.kind == "multi" and words else "unrecognized")
            if len(hits) > 1 and not exact_hit:
                return (i, "ambiguous")
            words.append((exact_hit or hits)[0])
            exact += bool(exact_hit)
            i += 1
            if tok.kind == "multi":
                seen = {words[-1]}
                while i < len(toks):
                    more = [v for v in tok.values if _keyword(toks[i][0], v)]
                    if not more or more[0] in seen:
                        return (i, "wrong")
                    seen.add(more[0])
                    words.append(more[0])
                    i += 1
        elif tok.kind == "int":
            if not typed.isdigit() or not tok.lo <= int(typed) <= tok.hi:
                return (i, "wrong")
            words.append(str(int(typed)))
            i += 1
        elif tok.kind == "ipv4":
            try:
                words.append(str(ipaddress.IPv4Address(typed)))
            except ValueError:
                return (i, "wrong")
            i += 1
        elif tok.kind == "mask":
            if typed.isdigit() and 0 <= int(typed) <= 32:
                words.append(str(int(typed)))
            else:
                try:
                    ipaddress.IPv4Network(f"0.0.0.0/{typed}")
                except ValueError:
                    return (i, "wrong")
                words.append(typed)
            i += 1
        elif tok.kind == "word":
            if len(typed) > 64:
                return (i, "wrong")
            words.append(typed)
            i += 1
        elif tok.kind == "text":
            text = line[column:].strip()
            if len(text) > 242:
                return (i, "wrong")
            words.append(text)
            i = len(toks)
        elif tok.kind == "if":
            name = None
            one = _IF_ONE.match(typed)
            if one:
                name = ctx.interface(*one.groups())
                if name is not None:
                    i += 1
            elif _IF_TYPE.match(typed) and i + 1 < len(toks) and _IF_NUM.match(toks[i + 1][0]):
                name = ctx.interface(typed, toks[i + 1][0])
                if name is None:
                    return (i + 1, "wrong")
                i += 2
            elif _IF_TYPE.match(typed) and i + 1 >= len(toks):
                return (i + 1, "incomplete")
            if name is None:
                return (i, "wrong")
            words.append(name)
        else:  # pragma: no cover - grammar tables are written by us
            raise ValueError(f"unknown token kind {tok.kind!r} in {spec.pattern!r}")
    if i < len(toks):
        return (i, "toomany")
    return Match(spec, words, exact)


_KIND_RANK = {"wrong": 3, "ambiguous": 4, "unrecognized": 2, "toomany": 1, "incomplete": 0}


def match(candidates: list[Spec], line: str, ctx: Context, partial: bool = False) -> Match | Failure:
    """Best match of ``line`` among ``candidates`` or the error VRP would print.

    ``partial`` accepts a leading part of a form (what ``undo`` takes).
    """
    toks = tokenize(line)
    if toks:
        typed = toks[0][0].lower()
        firsts = {s.tokens[0].values[0] for s in candidates if s.tokens and s.tokens[0].kind == "kw"}
        hits = {word for word in firsts if word.startswith(typed)}
        if len(hits) > 1 and typed not in hits:
            return Failure("ambiguous", toks[0][1])
        # Only forms whose first keyword the typed word can abbreviate can match or fail past position 0.
        narrowed = [s for s in candidates if s.tokens and s.tokens[0].kind == "kw" and s.tokens[0].values[0] in hits]
        if narrowed:
            candidates = narrowed
    matches: list[Match] = []
    worst: tuple[int, int, str] = (-1, -1, "unrecognized")
    for spec in candidates:
        result = _match_spec(spec, toks, line, ctx, partial)
        if isinstance(result, Match):
            matches.append(result)
        else:
            index, kind = result
            if index > 0 and kind == "unrecognized":
                kind = "wrong" if spec.tokens[min(index, len(spec.tokens) - 1)].kind not in ("kw", "choice") else kind
            rank = (index, _KIND_RANK[kind], kind)
            if rank[:2] > worst[:2]:
                worst = rank
    if matches:
        matches.sort(key=lambda m: (-m.exact, len(m.spec.tokens)))
        best = matches[0]
        rivals = [m for m in matches if m.exact == best.exact and m.words[:1] != best.words[:1]]
        if rivals and toks and toks[0][0].lower() != best.words[0]:
            return Failure("ambiguous", toks[0][1])
        return best
    index, _, kind = worst
    if index < 0:
        index, kind = 0, "unrecognized"
    if index >= len(toks):
        column = len(line.rstrip()) + 1
        kind = "incomplete" if kind != "toomany" else kind
    else:
        column = toks[index][1]
    return Failure(kind, column)


def _table(*entries: tuple) -> list[Spec]:
    out: list[Spec] = []
    for entry in entries:
        pattern, options = entry[0], (entry[1] if len(entry) > 1 else {})
        out.extend(specs(pattern, **options))
    return out


_COLORS = "{green|yellow|red}"
_PHB = "{be|af1|af2|af3|af4|ef|cs6|cs7}"
_LIMITS = (
    ("low-limit <int:0-100> high-limit <int:0-100> discard-percentage <int:1-100>"),
    ("buffer-size low-limit <int:96-36000000> high-limit <int:96-36000000> discard-percentage <int:1-100>"),
    ("buffer-size cell low-limit <int:1-125000> high-limit <int:1-125000> discard-percentage <int:1-100>"),
)

# Operational commands valid in every configuration view.
CONFIG_EXEC = _table(
    ("commit", {"name": "commit"}),
    ("commit trial [<int:1-65535>]", {"name": "commit_trial"}),
    ("commit description <text>", {"name": "commit"}),
    ("commit label <word>", {"name": "commit"}),
    ("quit", {"name": "quit"}),
    ("return", {"name": "return"}),
    ("clear configuration candidate", {"name": "clear_candidate"}),
    ("abort trial", {"name": "abort_trial"}),
    ("display <text>", {"name": "display"}),
    ("display", {"name": "display"}),
)

USER_EXEC = _table(
    ("system-view", {"name": "system_view"}),
    ("screen-length <int:0-512> temporary", {"name": "screen_length"}),
    ("save", {"name": "save"}),
    ("quit", {"name": "logout"}),
    ("return", {"name": "noop"}),
    ("display <text>", {"name": "display"}),
    ("display", {"name": "display"}),
    ("rollback configuration last <int:1-80>", {"name": "rollback_last"}),
    ("rollback configuration to commit-id <int:1000000001-1999999999>", {"name": "rollback_to"}),
    ("abort trial", {"name": "abort_trial"}),
)

DISPLAY = _table(
    ("current-configuration", {"name": "current"}),
    ("current-configuration interface <if>", {"name": "current_interface"}),
    ("this", {"name": "this"}),
    ("version", {"name": "version"}),
    ("interface", {"name": "interface"}),
    ("interface brief", {"name": "interface_brief"}),
    ("interface description", {"name": "interface_description"}),
    ("interface <if>", {"name": "interface"}),
    ("lldp neighbor", {"name": "lldp"}),
    ("lldp neighbor brief", {"name": "lldp_brief"}),
    ("lldp neighbor interface <if>", {"name": "lldp"}),
    ("device", {"name": "device"}),
    ("esn", {"name": "esn"}),
    ("transceiver [verbose]", {"name": "transceiver"}),
    ("transceiver interface <if> [verbose]", {"name": "transceiver"}),
    ("saved-configuration", {"name": "saved"}),
    ("clock", {"name": "clock"}),
    ("configuration candidate", {"name": "candidate"}),
    ("configuration candidate changes", {"name": "candidate_changes"}),
    ("configuration commit list", {"name": "commit_list"}),
    ("configuration commit changes [last <int:1-80>]", {"name": "commit_changes"}),
    ("configuration commit changes at commit-id <int:1000000001-1999999999>", {"name": "commit_changes"}),
    ("configuration trial status", {"name": "trial_status"}),
)

VIEWS: dict[str, list[Spec]] = {
    "system": _table(
        ("sysname <word>", {"key": 1}),
        ("interface <if>", {"enters": "interface"}),
        ("bgp <int:1-4294967295>", {"enters": "bgp"}),
        ("dcb pfc [<word>]", {"enters": "dcb-pfc"}),
        ("dcb pfc deadlock-detect interval <int:1-1000>", {"key": 4}),
        ("dcb pfc deadlock-detect timer <int:1-10000>", {"key": 4}),
        ("dcb pfc deadlock-recovery timer <int:0-10000>", {"key": 4}),
        ("dcb pfc deadlock recovery-behavior {discard|forwarding} [slot <int:1-16>]", {"key": 4}),
        ("qos buffer headroom-pool size <int:0-1000000> {kbytes|mbytes|cells} [slot <int:1-16>]", {"key": 3}),
        ("drop-profile <word>", {"enters": "drop"}),
        ("diffserv domain <word>", {"enters": "dsdomain"}),
        ("load-balance profile <word>", {"enters": "lb"}),
        ("lldp enable", {}),
        ("router id <ipv4>", {"key": 2}),
        ("aaa", {"enters": "aaa"}),
        ("bfd", {"enters": "bfd"}),
        ("stelnet server enable", {}),
        ("ssh user <word>", {}),
        ("ssh user <word> authentication-type {password|rsa|all}", {"key": 4}),
        ("ssh user <word> service-type {stelnet|snetconf|all}", {"key": 4}),
        ("ssh authentication-type default password", {}),
        ("user-interface vty <int:0-63> <int:0-63>", {"enters": "vty"}),
        ("ai-service", {"enters": "ai-service"}),
        ("route-policy <word> {permit|deny} node <int:0-65535>", {"enters": "route-policy"}),
    ),
    # "apply as-path AS... additive" prepends (cost-out); up to 10 AS numbers in the lab.
    "route-policy": _table(
        *[("apply as-path" + " <int:1-4294967295>" * n + " {additive|overwrite}", {"key": 2}) for n in range(1, 11)],
        ("apply cost <int:0-4294967295>", {"key": 2}),
    ),
    "ai-service": _table(("ai-ecn", {"enters": "ai-ecn"})),
    "ai-ecn": _table(
        ("ai-ecn enable", {}),
        ("assign queue <int:0-7> [model <word>]", {"key": 3}),
    ),
    "interface": _table(
        ("description <text>", {"key": 1}),
        ("undo portswitch", {"key": 1}),
        ("portswitch", {"key": 1, "store": False}),
        ("shutdown", {"key": 1}),
        ("ip address <ipv4> <mask>", {"key": 2}),
        ("mtu <int:46-9600>", {"key": 1}),
        ("jumboframe enable [<int:1536-12288>]", {"key": 2}),
        ("dcb pfc enable [<word>] [mode {auto|manual}]", {"key": 3}),
        ("trust dscp", {"key": 1}),
        ("trust 8021p {inner|outer}", {"key": 1}),
        ("qos queue <int:0-7> ecn", {}),
        ("qos queue <int:0-7> wred <word>", {"key": 4}),
        ("qos queue <int:0-7> drr weight <int:1-100>", {"key": 4}),
        ("qos pq <int:0-7> [to <int:0-7>]", {}),
        ("qos drr <int:0-7> [to <int:0-7>]", {}),
        ("fec mode {rs-fec|none|auto}", {"key": 2}),
    ),
    "bgp": _table(
        ("router-id <ipv4>", {"key": 1}),
        ("peer <ipv4> as-number <int:1-4294967295>", {"key": 3, "undo_min": 2}),
        ("peer <ipv4> bfd enable", {}),
        (
            "peer <ipv4> bfd min-tx-interval <int:3-1000> min-rx-interval <int:3-1000> detect-multiplier <int:3-50>",
            {"key": 3},
        ),
        ("peer <ipv4> description <text>", {"key": 3}),
        ("peer <ipv4> connect-interface <if>", {"key": 3}),
        ("timer keepalive <int:0-21845> hold <int:0-65535>", {"key": 1}),
        ("ipv4-family unicast", {"enters": "bgp-af"}),
    ),
    "bgp-af": _table(
        ("maximum load-balancing <int:1-128>", {"key": 2}),
        ("maximum load-balancing {ebgp|ibgp} <int:1-128>", {"key": 3}),
        ("peer <ipv4> enable", {}),
        ("peer <ipv4> route-policy <word> {import|export}", {}),
        ("network <ipv4> <mask>", {}),
        ("import-route direct", {}),
    ),
    "dcb-pfc": _table(
        ("priority <int:0-7>", {}),
        ("priority <int:0-7> turn-off threshold <int:1-300>", {"key": 3}),
        ("priority <int:0-7> error-down threshold <int:1-300>", {"key": 3}),
        ("priority <int:0-7> deadlock-detect time <int:1-15>", {"key": 3}),
        ("priority <int:0-7> deadlock-recovery time <int:0-31>", {"key": 3}),
    ),
    "drop": _table(
        *[(f"color {_COLORS} {limits}", {"key": 2}) for limits in _LIMITS],
        *[(f"ecn {limits}", {"key": 1}) for limits in _LIMITS],
    ),
    "dsdomain": _table(
        (f"ip-dscp-inbound <int:0-63> phb {_PHB} [{_COLORS}]", {"key": 2}),
        (f"8021p-inbound <int:0-7> phb {_PHB} [{_COLORS}]", {"key": 2}),
    ),
    "lb": _table(
        ("ipv4 field {sip|dip|protocol|sport|dport|vlan|smac|dmac}*", {"key": 2}),
        ("ipv6 field {sip|dip|protocol|sport|dport|vlan|smac|dmac}*", {"key": 2}),
    ),
    "aaa": _table(
        ("local-user <word> password irreversible-cipher <word>", {"key": 3}),
        ("local-user <word> service-type {ssh|telnet|terminal|http}*", {"key": 3}),
        ("local-user <word> level <int:0-3>", {"key": 3}),
    ),
    "vty": _table(
        ("authentication-mode {aaa|password|none}", {"key": 1}),
        ("protocol inbound {ssh|telnet|all}", {"key": 2}),
        ("idle-timeout <int:0-35791> [<int:0-59>]", {"key": 1}),
    ),
    "bfd": [],
}


def view_suffix(kind: str, words: list[str]) -> str:
    """What the prompt shows after the device name inside a view, e.g. ``-400GE1/0/1``."""
    if kind == "interface":
        return f"-{words[1]}"
    if kind == "bgp":
        return "-bgp"
    if kind == "bgp-af":
        return "-bgp-af-ipv4"
    if kind == "dcb-pfc":
        return f"-dcb-pfc-{words[2] if len(words) > 2 else 'default'}"
    if kind == "drop":
        return f"-drop-{words[1]}"
    if kind == "dsdomain":
        return f"-dsdomain-{words[2]}"
    if kind == "lb":
        return f"-load-balance-profile-{words[2]}"
    if kind == "route-policy":
        return "-route-policy"
    if kind == "ai-ecn":
        return "-ai-service-ai-ecn"
    if kind == "vty":
        return f"-ui-vty{words[2]}-{words[3]}"
    return f"-{kind}"
