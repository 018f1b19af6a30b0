"""A small command grammar so the emulated EOS CLI accepts exactly what we document, and errors like EOS elsewhere.

A command is described by a *spec* string, the way the EOS manual writes syntax::

    neighbor <ip> remote-as <asn>
    random-detect ecn minimum-threshold <int> segments|bytes|kbytes|mbytes maximum-threshold ...
    ntp server [vrf <word>] <host> [iburst] [prefer] [version <int:1-4>]
    ip load-sharing trident|sand|arad fields ip|ipv6 (source-ip|destination-ip|...)+

Tokens: a literal keyword, ``a|b`` alternatives, ``<kind>`` / ``<int:lo-hi>`` values, ``[...]`` an optional
group, ``(a|b)+`` one or more keywords, ``<rest>`` the rest of the line. Matching reports the furthest
token it reached, so errors say ``Invalid input (at token N: 'x')`` at the same place EOS would.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

__all__ = ["CliError", "Spec", "token_error"]


class CliError(Exception):
    """A command EOS would refuse; ``message`` is the text eAPI puts in ``errors`` (no leading '% ')."""

    def __init__(self, message: str):
        self.message = message
        super().__init__(message)


def token_error(tokens: list[str], index: int) -> CliError:
    if not tokens:
        return CliError("Incomplete command")
    if index >= len(tokens):
        return CliError("Incomplete command")
    return CliError(f"Invalid input (at token {index}: '{tokens[index]}')")


_HHMMSS = re.compile(r"^(\d{1,2}):([0-5]\d):([0-5]\d)$")


def _valid(kind: str, arg: str | None, token: str) -> bool:
    if kind == "int":
        if not token.isdigit():
            return False
        if arg:
            lo, hi = (int(x) for x in arg.split("-"))
            return lo <= int(token) <= hi
        return True
    if kind == "float":
        try:
            value = float(token)
        except ValueError:
            return False
        if arg:
            lo, hi = (float(x) for x in arg.split("~"))
            return lo <= value <= hi
        return value >= 0
    if kind == "word":
        return bool(token)
    if kind == "ip":
        try:
            ipaddress.IPv4Address(token)
        except ValueError:
            return False
        return True
    if kind == "prefix":
        try:
            ipaddress.IPv4Interface(token)
        except ValueError:
            return False
        return "/" in token
    if kind == "host":  # IP address or DNS name
        return bool(re.match(r"^[A-Za-z0-9][A-Za-z0-9.:-]*$", token))
    if kind == "asn":
        if re.match(r"^\d+\.\d+$", token):
            hi, lo = (int(x) for x in token.split("."))
            return hi <= 65535 and lo <= 65535
        return token.isdigit() and 1 <= int(token) <= 4294967295
    if kind == "as-or-auto":  # "set as-path prepend": an AS number, or "auto" for the local AS
        return token.lower() == "auto" or _valid("asn", None, token)
    if kind == "hostname":
        return bool(re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", token))
    if kind == "hhmmss":
        return bool(_HHMMSS.match(token))
    raise ValueError(f"unknown value kind {kind!r}")


@dataclass
class _Elem:
    kind: str  # lit | var | opt | plus | rest
    words: frozenset[str] = frozenset()
    var: str = ""
    arg: str | None = None
    children: list[_Elem] = field(default_factory=list)


def _tokenise_spec(spec: str) -> list[str]:
    out: list[str] = []
    for raw in spec.split():
        while raw.startswith("["):
            out.append("[")
            raw = raw[1:]
        closing = 0
        while raw.endswith("]"):
            closing += 1
            raw = raw[:-1]
        if raw:
            out.append(raw)
        out.extend("]" * closing)
    return out


def _compile(parts: list[str], pos: int = 0, until: str | None = None) -> tuple[list[_Elem], int]:
    elems: list[_Elem] = []
    while pos < len(parts):
        part = parts[pos]
        if part == "]":
            if until != "]":
                raise ValueError("unbalanced ']' in spec")
            return elems, pos + 1
        if part == "[":
            children, pos = _compile(parts, pos + 1, "]")
            elems.append(_Elem("opt", children=children))
            continue
        if part.startswith("(") and part.endswith(")+"):
            elems.append(_Elem("plus", words=frozenset(part[1:-2].split("|"))))
        elif part == "<rest>":
            elems.append(_Elem("rest"))
        elif part.startswith("<") and part.endswith(">"):
            name, _, arg = part[1:-1].partition(":")
            elems.append(_Elem("var", var=name, arg=arg or None))
        else:
            elems.append(_Elem("lit", words=frozenset(part.split("|"))))
        pos += 1
    if until:
        raise ValueError("unbalanced '[' in spec")
    return elems, pos


def _walk(elems: list) -> Iterator:
    """Every element of a compiled syntax, nested ones included."""
    for elem in elems:
        yield elem
        yield from _walk(elem.children)


class Spec:
    """One command's syntax, compiled once; ``match`` returns whether the whole line fits and how far it got."""

    def __init__(self, text: str):
        self.text = text
        self.elems, _ = _compile(_tokenise_spec(text))
        # every keyword anywhere in the syntax, and the position of its <rest> token (None without one)
        self.words: frozenset[str] = frozenset(word for elem in _walk(self.elems) for word in elem.words)
        self.rest_index: int | None = text.split().index("<rest>") if "<rest>" in text else None

    def __repr__(self) -> str:
        return f"Spec({self.text!r})"

    def match(self, tokens: list[str], autocomplete: bool = False) -> tuple[bool, int]:
        ok, reached, _ = self.expand(tokens, autocomplete)
        return ok, reached

    def expand(self, tokens: list[str], autocomplete: bool = False) -> tuple[bool, int, list[str]]:
        """Match, and return the tokens with abbreviated keywords completed (eAPI ``autoComplete``)."""
        furthest = [0]
        out: list[str] = []
        ok = self._match(self.elems, 0, tokens, 0, furthest, out, autocomplete)
        return ok, furthest[0], out if ok else list(tokens)

    def match_prefix(self, tokens: list[str]) -> bool:
        """True if ``tokens`` match the leading (non-optional) elements: the ``no``/``default`` form of a command."""
        if len(tokens) > len(self.elems):
            return False
        for elem, token in zip(self.elems, tokens, strict=False):
            if elem.kind == "lit" and token.lower() not in elem.words:
                return False
            if elem.kind == "var" and not _valid(elem.var, elem.arg, token):
                return False
            if elem.kind in ("opt", "plus", "rest"):
                return False
        return True

    @staticmethod
    def _keyword(words: frozenset[str], token: str, autocomplete: bool) -> str | None:
        lowered = token.lower()
        if lowered in words:
            return lowered
        if autocomplete:
            candidates = [w for w in words if w.startswith(lowered)]
            if len(candidates) == 1:
                return candidates[0]
        return None

    def _match(
        self, elems: list[_Elem], i: int, tokens: list[str], j: int, furthest: list[int], out: list[str], auto: bool
    ) -> bool:
        furthest[0] = max(furthest[0], j)
        if i == len(elems):
            return j == len(tokens)
        elem = elems[i]
        if elem.kind == "opt":
            return self._match(elem.children + elems[i + 1 :], 0, tokens, j, furthest, out, auto) or self._match(
                elems, i + 1, tokens, j, furthest, out, auto
            )
        if elem.kind == "rest":
            if j < len(tokens):
                furthest[0] = len(tokens)
                out.extend(tokens[j:])
                return True
            return False
        if j >= len(tokens):
            return False
        token = tokens[j]
        if elem.kind in ("lit", "var"):
            if elem.kind == "lit":
                word = self._keyword(elem.words, token, auto)
            else:
                word = token if _valid(elem.var, elem.arg, token) else None
            if word is None:
                return False
            out.append(word)
            if self._match(elems, i + 1, tokens, j + 1, furthest, out, auto):
                return True
            out.pop()
            return False
        if elem.kind == "plus":
            depth = len(out)
            k = j
            while k < len(tokens):
                word = self._keyword(elem.words, tokens[k], auto)
                if word is None:
                    break
                out.append(word)
                k += 1
                if self._match(elems, i + 1, tokens, k, furthest, out, auto):
                    return True
            del out[depth:]
            return False
        raise AssertionError(elem.kind)


def normalise(spec: Spec, tokens: list[str]) -> str:
    """The line as EOS stores it: keywords lower-cased, values as typed."""
    literals: set[str] = set()

    def collect(elems: list[_Elem]) -> None:
        for elem in elems:
            if elem.kind in ("lit", "plus"):
                literals.update(elem.words)
            collect(elem.children)

    collect(spec.elems)
    return " ".join(t.lower() if t.lower() in literals else t for t in tokens)
