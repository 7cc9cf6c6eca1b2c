"""Where each key and value of a JSON document is, so order-file problems can name a line.

``json.loads`` returns plain values with no positions, so :func:`scan_json` tokenizes the
text again and maps every key path (the same shape as :mod:`mes.settings.toml_lines`
uses: strings for object keys, ints for array indices) to the 1-based line where that
key, or that array element, begins. It is meant for text that ``json.loads`` has already
accepted; the first occurrence of a duplicated key wins.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from mes.settings.toml_lines import KeyPath

# A string, a punctuation mark, or any other run (number, true, false, null).
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\]:,]|[^\s{}\[\]:,"]+')


@dataclass(slots=True)
class _Frame:
    """An open JSON container while scanning."""

    path: KeyPath
    is_object: bool
    index: int = 0
    key: str = ""
    expect_key: bool = False


def scan_json(text: str, depth: int = 6) -> dict[KeyPath, int]:
    """Map the key path of every key and value of valid JSON text to its line.

    Args:
        text: a document ``json.loads`` accepts.
        depth: the longest key path recorded; the default reaches
            ``orders[i].units[j].options.NAME``.

    Returns:
        The line of each key path; the root ``()`` is the line of the first value.
    """
    lines: dict[KeyPath, int] = {}
    frames: list[_Frame] = []
    line, last = 1, 0
    for match in _TOKEN.finditer(text):
        line += text.count("\n", last, match.start())
        last = match.start()
        token = match.group()
        if token in {",", ":"}:
            if token == "," and frames and frames[-1].is_object:
                frames[-1].expect_key = True
            continue
        if token in {"}", "]"}:
            frames.pop()
            continue
        here: KeyPath = ()
        if frames:
            top = frames[-1]
            if top.is_object and top.expect_key:
                top.key = token[1:-1] if "\\" not in token else json.loads(token)
                top.expect_key = False
                if len(top.path) < depth:
                    lines.setdefault((*top.path, top.key), line)
                continue
            if top.is_object:
                here = (*top.path, top.key)
            else:
                here = (*top.path, top.index)
                top.index += 1
        if len(here) <= depth:
            lines.setdefault(here, line)
        if token in {"{", "["}:
            frames.append(_Frame(here, token == "{", expect_key=token == "{"))
    return lines
