"""Where each key of a TOML document is defined, so errors can name a line.

``tomllib`` returns plain dicts with no positions, so this module scans the text again
and maps every key path to the 1-based line that defines it. It understands what our
config files use: ``[table]`` and ``[a.b]`` headers, ``[[array.of.tables]]`` (each
occurrence gets its index, ``cells[0]``, ``cells[1]``, ...), a sub-table such as
``[cells.driver]`` belonging to the latest ``cells[i]``, ``key = value``, dotted and
quoted keys, comments, and values that span lines (multi-line strings, arrays, inline
tables), whose inner lines are never taken for keys. Array elements and inline-table
keys are recorded too, so ``capabilities[1]`` can point into a multi-line array.

The scanner is meant for text that ``tomllib`` has already accepted; on malformed text
it still terminates and never raises, it just knows fewer lines. For text ``tomllib``
refused, :func:`syntax_problem` turns its message into a problem with a line.

Path rendering (used in every :class:`mes.errors.Problem` of the settings loader):
list indices are ``[i]``; a key that is a TOML bare key (``A-Za-z0-9_-``) is joined
with ``.``; any other key is rendered in brackets and double quotes, so the quoted key
``"print.fdm"`` under ``[cells.duration_factors]`` of the third cell is
``cells[2].duration_factors["print.fdm"]``: one segment, never confused with two.
"""

from __future__ import annotations

import bisect
import json
import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mes.errors import Problem

Segment = str | int
KeyPath = tuple[Segment, ...]

_BARE = re.compile(r"[A-Za-z0-9_-]+")
_SCALAR_END = frozenset(",]}#\n")
_TOML_ERROR = re.compile(r"(.*) \(at (?:line (\d+), column (\d+)|end of document)\)", re.S)


def render_path(path: Iterable[Segment]) -> str:
    """Render a key path for a human: ``cells[2].duration_factors["print.fdm"]``.

    Args:
        path: segments; ints are list indices, strings are keys.

    Returns:
        The dotted form described in the module docstring ("" for the root).
    """
    out: list[str] = []
    for segment in path:
        if isinstance(segment, int):
            out.append(f"[{segment}]")
        elif _BARE.fullmatch(segment):
            out.append(f".{segment}" if out else segment)
        else:
            # json.dumps quotes and escapes exactly like a TOML basic string.
            out.append(f"[{json.dumps(segment, ensure_ascii=False)}]")
    return "".join(out)


def syntax_problem(message: str, text: str, source: str) -> Problem:
    """A ``tomllib`` syntax error as a problem, its line taken out of the message.

    Args:
        message: ``str()`` of the :class:`tomllib.TOMLDecodeError`.
        text: the document that failed to parse.
        source: the file name to put in the problem.

    Returns:
        ``TOML syntax error: <reason> (column C)`` at the error's line; for an error at
        the end of the document, to which tomllib gives no line, ``<reason> (at end of
        file)`` at the last line of the text.
    """
    match = _TOML_ERROR.fullmatch(message)
    if match is None:
        return Problem(f"TOML syntax error: {message}", source)
    reason, line, column = match.groups()
    if line is None:
        last = max(1, text.count("\n") + (0 if text.endswith("\n") else 1))
        return Problem(f"TOML syntax error: {reason} (at end of file)", source, last)
    return Problem(f"TOML syntax error: {reason} (column {column})", source, int(line))


@dataclass(frozen=True)
class KeyLines:
    """Line of definition for each key path of one document."""

    lines: dict[KeyPath, int]

    def line_of(self, path: Sequence[Segment]) -> int | None:
        """The line defining ``path``, or of its nearest ancestor that has one.

        A missing required key thus points at its table's header. The root has no
        line, so a path with no defined ancestor gives ``None``.
        """
        key = tuple(path)
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key[:-1]
        return None

    def exact(self, path: Sequence[Segment]) -> int | None:
        """The line defining exactly ``path``, without walking up."""
        return self.lines.get(tuple(path))


def scan(text: str) -> KeyLines:
    """Map every key path of a TOML document to the line that defines it.

    Args:
        text: the document.

    Returns:
        The key lines; implicit parents (``options`` for ``[options.material]``) get
        the line where they first appear.
    """
    scanner = _Scanner(text)
    scanner.run()
    return KeyLines(scanner.lines)


class _Scanner:
    """A single forward pass over the text; ``pos`` only ever increases."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.lines: dict[KeyPath, int] = {}
        self._starts = [0, *(match.end() for match in re.finditer("\n", text))]
        # Next index of each array of tables, keyed by its resolved path, so a nested
        # [[a.b]] restarts at 0 under every new [[a]].
        self._counts: dict[KeyPath, int] = {}

    def line(self, pos: int | None = None) -> int:
        return bisect.bisect_right(self._starts, self.pos if pos is None else pos)

    def peek(self, size: int = 1) -> str:
        return self.text[self.pos : self.pos + size]

    def record(self, path: KeyPath, line: int, *, implicit: bool = False) -> None:
        for end in range(1, len(path)):
            self.lines.setdefault(path[:end], line)
        if implicit:
            self.lines.setdefault(path, line)
        else:
            self.lines[path] = line

    # -- the document -----------------------------------------------------------

    def run(self) -> None:
        table: KeyPath = ()
        while True:
            self.skip_blank(newlines=True)
            if self.pos >= len(self.text):
                return
            start = self.pos
            if self.peek(2) == "[[":
                table = self.array_header()
            elif self.peek() == "[":
                table = self.table_header()
            else:
                self.key_value(table)
            self.skip_line()
            if self.pos == start:  # never loop on text the scanner does not grasp
                self.pos += 1

    def table_header(self) -> KeyPath:
        line = self.line()
        self.pos += 1
        keys = self.key()
        self.expect("]")
        path = self.resolve(keys)
        self.record(path, line)
        return path

    def array_header(self) -> KeyPath:
        line = self.line()
        self.pos += 2
        keys = self.key()
        self.expect("]]")
        if not keys:
            return ()
        parent = (*self.resolve(keys[:-1]), keys[-1])
        index = self._counts.get(parent, 0)
        self._counts[parent] = index + 1
        self.record(parent, line, implicit=True)
        self.record((*parent, index), line)
        return (*parent, index)

    def resolve(self, keys: Sequence[str]) -> KeyPath:
        """Insert the current index after every prefix that is an array of tables."""
        path: KeyPath = ()
        for key in keys:
            path = (*path, key)
            if path in self._counts:
                path = (*path, self._counts[path] - 1)
        return path

    def key_value(self, table: KeyPath) -> None:
        line = self.line()
        keys = self.key()
        self.skip_blank()
        if not keys or self.peek() != "=":
            return
        self.pos += 1
        path = (*table, *keys)
        self.record(path, line)
        self.value(path)

    # -- keys -------------------------------------------------------------------

    def key(self) -> list[str]:
        """A dotted key; quoted parts are decoded, so ``"print.fdm"`` is one part."""
        parts: list[str] = []
        while True:
            self.skip_blank()
            char = self.peek()
            if char in ('"', "'"):
                start = self.pos
                self.string()
                parts.append(_decode_key(self.text[start : self.pos]))
            else:
                match = _BARE.match(self.text, self.pos)
                if not match:
                    return parts
                parts.append(match.group())
                self.pos = match.end()
            self.skip_blank()
            if self.peek() != ".":
                return parts
            self.pos += 1

    # -- values -----------------------------------------------------------------

    def value(self, path: KeyPath) -> None:
        self.skip_blank()
        char = self.peek()
        if char in ('"', "'"):
            self.string()
        elif char == "[":
            self.array(path)
        elif char == "{":
            self.inline_table(path)
        else:
            while self.pos < len(self.text) and self.text[self.pos] not in _SCALAR_END:
                self.pos += 1

    def array(self, path: KeyPath) -> None:
        self.pos += 1
        index = 0
        while True:
            self.skip_blank(newlines=True)
            if self.pos >= len(self.text) or self.peek() == "]":
                self.pos += 1
                return
            start = self.pos
            self.record((*path, index), self.line())
            self.value((*path, index))
            self.skip_blank(newlines=True)
            if self.peek() == ",":
                self.pos += 1
                index += 1
            elif self.pos == start:
                self.pos += 1

    def inline_table(self, path: KeyPath) -> None:
        self.pos += 1
        while True:
            self.skip_blank(newlines=True)
            if self.pos >= len(self.text) or self.peek() == "}":
                self.pos += 1
                return
            start = self.pos
            line = self.line()
            keys = self.key()
            self.skip_blank()
            if keys and self.peek() == "=":
                self.pos += 1
                self.record((*path, *keys), line)
                self.value((*path, *keys))
            self.skip_blank(newlines=True)
            if self.peek() == "," or self.pos == start:  # or: never stall on bad text
                self.pos += 1

    def string(self) -> None:
        """Skip one string of any of the four kinds, multi-line ones included."""
        quote = self.peek()
        escapes = quote == '"'
        if self.peek(3) == quote * 3:
            self.pos += 3
            end = self.find(quote * 3, escapes)
            self.pos = end + 3
            # A closing delimiter may be followed by up to two quotes of the content.
            for _ in range(2):
                if self.peek() == quote:
                    self.pos += 1
            return
        self.pos += 1
        end = self.find(quote, escapes, stop_at_newline=True)
        self.pos = end + 1

    def find(self, delimiter: str, escapes: bool, stop_at_newline: bool = False) -> int:
        text, pos = self.text, self.pos
        while pos < len(text):
            if escapes and text[pos] == "\\":
                pos += 2
                continue
            if stop_at_newline and text[pos] == "\n":
                return pos - 1
            if text.startswith(delimiter, pos):
                return pos
            pos += 1
        return len(text)

    # -- whitespace -------------------------------------------------------------

    def skip_blank(self, newlines: bool = False) -> None:
        """Skip spaces and tabs; with ``newlines``, also line ends and comments."""
        text = self.text
        while self.pos < len(text):
            char = text[self.pos]
            if char in " \t\r" or (newlines and char == "\n"):
                self.pos += 1
            elif newlines and char == "#":
                self.skip_line()
            else:
                return

    def skip_line(self) -> None:
        """Skip to the end of the line (a trailing comment, or text not understood)."""
        end = self.text.find("\n", self.pos)
        self.pos = len(self.text) if end < 0 else end

    def expect(self, token: str) -> None:
        self.skip_blank()
        if self.text.startswith(token, self.pos):
            self.pos += len(token)


def _decode_key(raw: str) -> str:
    """Decode a quoted key exactly as ``tomllib`` does (escapes included)."""
    try:
        value = tomllib.loads(f"k = {raw}")["k"]
    except tomllib.TOMLDecodeError:
        return raw.strip("\"'")
    return value if isinstance(value, str) else raw
