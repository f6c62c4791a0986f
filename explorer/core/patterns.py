"""Patterns over parameter names, matched in linear time by RE2 (never Python's ``re``).

Students type Gluon-style regular expressions (``.*weight``, ``dense0_.*``) and globs
(``*.weight``, ``0.*``). Python's backtracking ``re`` can take exponential time on user
text such as ``(.|.)*X``, freezing every session of a shared server; RE2 matches in time
linear in the name, and refuses the few constructs that would need backtracking
(backreferences, lookaround) with a ``SpecError`` that says so.

Three modes:

- ``"full"``: the whole name must match, as the explorer's filter does (``.*weight``).
- ``"prefix"``: the name must match from its start, as Gluon's ``collect_params``
  (``re.match``) does, so ``dense0`` keeps ``dense0_weight`` and ``dense0_bias``.
- ``"glob"``: shell-style ``*``, ``?`` and ``[...]`` as ``fnmatch`` reads them, turned
  into an RE2 expression.

Example::

    select(["0.weight", "0.bias", "2.weight"], ".*weight")          # ['0.weight', '2.weight']
    select(["dense0_weight", "dense1_weight"], "dense0", "prefix")  # ['dense0_weight']
    compile_pattern("*.bias", "glob").matches("2.bias")            # True
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache

import re2

from explorer.core.errors import SpecError
from explorer.core.limits import DEFAULT_LIMITS, Limits

__all__ = ["MatchMode", "Pattern", "MODE_LABELS", "compile_pattern", "select", "glob_to_regex"]


class MatchMode(StrEnum):
    """How a pattern is matched against a name."""

    FULL = "full"
    PREFIX = "prefix"
    GLOB = "glob"


MODE_LABELS = {
    MatchMode.FULL: "regex, whole name (the explorer's filter)",
    MatchMode.PREFIX: "regex from the start (Gluon's collect_params)",
    MatchMode.GLOB: "glob (* any text, ? one character)",
}

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # RE2 would print every refused pattern on stderr
_NOTHING = "[^\\x00-\\x{10FFFF}]"  # a class no character is in
_HINTS = (
    ("invalid escape sequence: \\", "backreferences such as \\1 need backtracking"),
    ("invalid perl operator: (?=", "lookahead (?=...) needs backtracking"),
    ("invalid perl operator: (?!", "lookahead (?!...) needs backtracking"),
    ("invalid perl operator: (?<", "lookbehind (?<=...) needs backtracking"),
)


@dataclass(frozen=True)
class Pattern:
    """A compiled name pattern; ``matches(name)`` runs in time linear in the name."""

    text: str
    mode: MatchMode
    _regex: object = field(repr=False, compare=False)

    def matches(self, name: str) -> bool:
        """Whether ``name`` matches, by this pattern's mode."""
        if isinstance(self._regex, _StarGlob):
            return self._regex.fullmatch(name)
        if self.mode is MatchMode.PREFIX:
            return self._regex.match(name) is not None
        return self._regex.fullmatch(name) is not None

    def matching(self, names: Iterable[str]) -> set[str]:
        """The set of ``names`` that match: one pass, no call per name for a ``*`` glob."""
        regex = self._regex
        if isinstance(regex, _StarGlob):
            return regex.matching(names)
        if self.mode is MatchMode.PREFIX:
            return {name for name in names if regex.match(name) is not None}
        return {name for name in names if regex.fullmatch(name) is not None}


@dataclass(frozen=True)
class _StarGlob:
    """A glob whose only wildcard is ``*`` (``*.weight``, ``0.*``): literal pieces in order.

    Matching takes the first piece as a prefix, the last as a suffix and finds the rest
    left to right with ``str.find``: time linear in the name, and several times faster
    than a call into RE2 for the globs students type most.
    """

    pieces: tuple[str, ...]

    def fullmatch(self, name: str) -> bool:
        if len(self.pieces) == 1:
            return name == self.pieces[0]
        first, *middle, last = self.pieces
        if len(name) < len(first) + len(last) or not name.startswith(first):
            return False
        if not name.endswith(last):
            return False
        at, end = len(first), len(name) - len(last)
        for piece in middle:
            at = name.find(piece, at, end)
            if at < 0:
                return False
            at += len(piece)
        return True

    def matching(self, names: Iterable[str]) -> set[str]:
        if len(self.pieces) != 2:
            return {name for name in names if self.fullmatch(name)}
        first, last = self.pieces  # "*.weight", "0.*", "h.*.bias" has three pieces
        size = len(first) + len(last)
        return {n for n in names if len(n) >= size and n.startswith(first) and n.endswith(last)}


def glob_to_regex(glob: str) -> str:
    """An RE2 expression that full-matches what ``fnmatch.fnmatchcase(name, glob)`` accepts."""
    out, i, n = [], 0, len(glob)
    while i < n:
        char = glob[i]
        i += 1
        if char == "*":
            out.append(".*")
        elif char == "?":
            out.append(".")
        elif char == "[":
            end = i + (i < n and glob[i] == "!")
            end += end < n and glob[end] == "]"  # a ']' first in the set is literal
            end = glob.find("]", end)
            if end < 0:
                out.append("\\[")
                continue
            out.append(_glob_set(glob[i:end]))
            i = end + 1
        else:
            out.append(_escape(char))
    return "".join(out)


def _glob_set(body: str) -> str:
    """A ``[...]`` set of a glob as an RE2 class, read as ``fnmatch`` reads it.

    Hyphens that make ranges split the body into chunks; a range whose ends are out of
    order is dropped, as ``fnmatch`` drops it; an empty set matches nothing.
    """
    chunks, start, at = [], 0, 2 if body.startswith("!") else 1
    while (at := body.find("-", at)) >= 0:
        chunks.append(body[start:at])
        start, at = at + 1, at + 3
    if body[start:]:
        chunks.append(body[start:])
    else:
        chunks[-1] += "-"
    for k in range(len(chunks) - 1, 0, -1):
        if chunks[k - 1][-1] > chunks[k][0]:
            chunks[k - 1] = chunks[k - 1][:-1] + chunks[k][1:]
            del chunks[k]
    text = "-".join(chunks)
    if not text:
        return _NOTHING
    if text == "!":
        return "."  # a negated empty set: any one character
    negate = text.startswith("!")
    chunks[0] = chunks[0][negate:]
    members = "-".join("".join(_escape(c) for c in chunk) for chunk in chunks)
    return f"[{'^' if negate else ''}{members}]"


def _escape(char: str) -> str:
    return "\\" + char if char.isascii() and not char.isalnum() else char


def compile_pattern(
    text: object, mode: str = MatchMode.FULL, limits: Limits = DEFAULT_LIMITS, path: str = ""
) -> Pattern:
    """Compile ``text`` for matching names by ``mode``; ``SpecError`` if RE2 cannot run it.

    The length cap is ``limits.max_pattern_chars``. The last few hundred patterns compiled
    are kept, so a rule applied again is not compiled again.
    """
    if isinstance(text, str) and isinstance(mode, str):
        try:
            return _compiled(text, mode, limits.max_pattern_chars)
        except SpecError as err:
            raise SpecError(err.reason, path) from None
    return _compile(text, mode, limits.max_pattern_chars, path)


@lru_cache(maxsize=512)
def _compiled(text: str, mode: str, max_chars: int) -> Pattern:
    return _compile(text, mode, max_chars, "")


def _compile(text: object, mode: str, max_chars: int, path: str) -> Pattern:
    try:
        mode = MatchMode(mode)
    except ValueError:
        raise SpecError(
            f"unknown match mode {mode!r}; use one of {', '.join(MatchMode)}", path
        ) from None
    kind = "glob" if mode is MatchMode.GLOB else "regular expression"
    if not isinstance(text, str) or len(text) > max_chars:
        raise SpecError(f"must be a {kind} of at most {max_chars} characters", path)
    if mode is MatchMode.GLOB and not any(c in text for c in "?["):
        return Pattern(text, mode, _StarGlob(tuple(text.split("*"))))
    source = glob_to_regex(text) if mode is MatchMode.GLOB else text
    try:
        regex = re2.compile(f"(?s:{source})", _OPTIONS)
    except re2.error as err:
        raise SpecError(_explain(err, source), path) from None
    return Pattern(text, mode, regex)


# RE2's reasons, in plain words about the student's own text (never the (?s:…) it is wrapped in)
_PLAIN = (
    ("missing )", "a '(' is not closed: add ')' after what it groups"),
    ("unexpected )", "a ')' has no '(' before it"),
    ("missing ]", "a '[' is not closed: add ']' after the characters it lists"),
    (
        "no argument for repetition operator",
        "'*', '+' and '?' repeat what comes before them, and nothing does; for any text write "
        "'.*' (e.g. .*weight), or pick the glob mode where * means any text",
    ),
    ("bad repetition operator", "two repetitions in a row, such as '**' or '+*'; keep one"),
    ("invalid repetition size", "a repetition {n,m} needs n ≤ m ≤ 1000"),
    ("invalid character class range", "a range in [...] runs backwards, such as z-a; write a-z"),
    ("trailing \\", "the pattern ends with a lone '\\'; write \\\\ for a backslash"),
    ("invalid named capture group", "a named group must read (?P<name>...)"),
)


def _explain(err: re2.error, source: str) -> str:
    """Why RE2 refused ``source``, in plain words, with the student's text quoted."""
    detail = err.args[0].decode() if isinstance(err.args[0], bytes) else str(err.args[0])
    escape = detail.startswith("invalid escape sequence: \\") and not detail[-1:].isdigit()
    for start, hint in _HINTS:
        if detail.startswith(start) and not escape:
            return f"not supported: {hint}; patterns here run in linear time (RE2)"
    if escape:
        return (
            f"not a valid regular expression: {detail.rpartition(' ')[2]!r} is not an escape "
            f"RE2 knows; write the letter itself (in {source!r})"
        )
    if detail.startswith("missing )") and source.endswith("\\"):
        detail = "trailing \\"
    for start, plain in _PLAIN:
        if detail.startswith(start):
            return f"not a valid regular expression: {plain} (in {source!r})"
    reason = detail.split(": ", 1)[0]
    return f"not a valid regular expression: {reason} (in {source!r})"


def select(names: Iterable[str], pattern: str | Pattern, mode: str = MatchMode.FULL) -> list[str]:
    """The names that ``pattern`` matches, in their order; a string is compiled with ``mode``."""
    if not isinstance(pattern, Pattern):
        pattern = compile_pattern(pattern, mode)
    return [name for name in names if pattern.matches(name)]
