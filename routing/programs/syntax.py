"""Reading one line of G-code into words: the dialect we generate and Marlin/GRBL users send.

A line is, in order: an optional line number ``N123``; words, each a letter and a number
(``G1``, ``X-1.5``, ``F.5``; spaces between and inside words are optional, as GRBL allows:
``G1X10 Y 20``); an optional Marlin checksum ``*71``; comments anywhere, ``( ... )`` inline
or ``;`` to the end of the line. Letters are case-insensitive. Lines of ``%`` (tape
markers) are empty. Marlin's bare axis letters (``G28 X Y``, ``M84 E``) are words without a
value. A few Marlin commands take free text (``M117 Hello``), kept as ``text``; GRBL system
commands (``$H``, ``$X``) are kept whole as ``system``.

The checksum is the XOR of every byte before ``*`` (comments removed, leading blanks
ignored), as Marlin computes it; a wrong checksum is a syntax error, as it would be on the
printer. Nothing here knows what a word means: :mod:`routing.programs.motion` does.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_WORD = re.compile(r"\s*([A-Za-z])\s*([+-]?\s*(?:\d+\.?\d*|\.\d+))?\s*")
STRING_COMMANDS = frozenset({"M23", "M28", "M32", "M117", "M118", "M928"})
"""Marlin commands whose argument is free text (a message or a file name)."""
BARE_LETTERS = frozenset("XYZEABC")
"""Letters Marlin accepts without a number (``G28 X``: home X)."""


class GcodeSyntaxError(ValueError):
    """A line that cannot be read; the message says where and why."""


@dataclass(frozen=True, slots=True)
class Word:
    """A letter and its number (``None`` for a bare axis letter).

    Attributes:
        letter: Upper-case letter.
        value: The number, or ``None`` for Marlin's bare axis letters.
    """

    letter: str
    value: float | None

    @property
    def code(self) -> str:
        """The word as a command name: ``G01`` reads ``G1``, ``G38.2`` stays ``G38.2``."""
        if self.value is None:
            return self.letter
        if self.value.is_integer():
            return f"{self.letter}{int(self.value)}"
        return f"{self.letter}{self.value:g}"


@dataclass(frozen=True, slots=True)
class Line:
    """One parsed line.

    Attributes:
        number: Position of the line in its program, from 1.
        words: The words in order, line number and checksum excluded.
        n: The ``N`` line number, if any.
        text: Free-text argument of a :data:`STRING_COMMANDS` command.
        system: A GRBL system command such as ``$H``, kept whole.
    """

    number: int
    words: tuple[Word, ...] = ()
    n: int | None = None
    text: str = ""
    system: str = ""

    @property
    def commands(self) -> list[str]:
        """The G and M codes of the line, in order (``["G90", "G1"]``)."""
        return [w.code for w in self.words if w.letter in "GM"]


def _strip_comments(text: str) -> str:
    """Return ``text`` without its comments; raise on an unclosed parenthesis."""
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == ";":
            break
        if char == "(":
            end = text.find(")", i + 1)
            if end < 0:
                raise GcodeSyntaxError(f"comment opened at column {i + 1} is never closed")
            out.append(" ")
            i = end + 1
            continue
        out.append(char)
        i += 1
    return "".join(out).strip()


def _strip_checksum(code: str) -> str:
    star = code.find("*")
    if star < 0:
        return code
    given = code[star + 1 :].strip()
    if not given.isdigit():
        raise GcodeSyntaxError(f"checksum {given!r} is not a number")
    body = code[:star]
    computed = 0
    for byte in body.encode("ascii", "replace"):
        computed ^= byte
    if int(given) != computed:
        raise GcodeSyntaxError(f"checksum {given} does not match the line (computed {computed})")
    return body


def parse_line(text: str, number: int = 1) -> Line:
    """Read one line of G-code.

    Args:
        text: The line, without its line break.
        number: Its position in the program (from 1), carried into the result.

    Returns:
        The line's words; an empty line (blank, comment only, ``%``) has none.

    Raises:
        GcodeSyntaxError: The line cannot be read: an unclosed comment, a bad checksum,
            a letter without a number, or characters that are not words.
    """
    code = _strip_comments(text)
    if code == "%":
        return Line(number)
    if code.startswith("$"):
        return Line(number, system=code.upper())
    code = _strip_checksum(code)
    words: list[Word] = []
    n: int | None = None
    pos = 0
    while pos < len(code):
        match = _WORD.match(code, pos)
        if match is None or match.end() == pos:
            raise GcodeSyntaxError(f"cannot read {code[pos:].strip()!r} at column {pos + 1}")
        letter = match.group(1).upper()
        raw = match.group(2)
        pos = match.end()
        if raw is None:
            if letter not in BARE_LETTERS:
                raise GcodeSyntaxError(f"{letter} needs a number")
            words.append(Word(letter, None))
            continue
        value = float(raw.replace(" ", ""))
        if not math.isfinite(value):
            raise GcodeSyntaxError(f"{letter} has a number too large to read")
        if letter == "N":
            if words or n is not None or not value.is_integer():
                raise GcodeSyntaxError("a line number N must come first and be whole")
            n = int(value)
            continue
        word = Word(letter, value)
        words.append(word)
        if word.code in STRING_COMMANDS:
            return Line(number, tuple(words), n, text=code[pos:].strip())
    return Line(number, tuple(words), n)
