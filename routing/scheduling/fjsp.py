"""Reader for the flexible job-shop text format (Brandimarte instances and kin).

Format: the first non-blank line is ``n_jobs n_machines [average machines per
operation]`` (the third field is informational and may be a decimal); then exactly
``n_jobs`` non-blank lines, one per job: ``n_ops``, then per operation ``k`` followed by
``k`` pairs ``machine time`` (machines numbered from 1, integer times). Tokens are split
on any whitespace, blank lines are skipped, and lines after the last job line are
ignored. A job line whose token count does not match its own counts is refused.

Every problem is reported as a :class:`FjspError` (an :class:`~mes.errors.InputError`)
naming the file and the physical line number; all bad lines are reported, not only the
first. Best-known bounds (``bks.json`` beside the files, keyed by file stem) are read by
:func:`read_bounds`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from mes.errors import InputError, Problem
from routing.scheduling.model import Job, Machine, Operation
from routing.scheduling.model import Problem as SchedulingProblem

MAX_BYTES = 16 * 1024 * 1024


class FjspError(InputError):
    """A flexible job-shop file that cannot be read; each problem names file and line."""


@dataclass(frozen=True, slots=True)
class Bounds:
    """Best-known lower and upper bounds on an instance's makespan."""

    lb: float
    ub: float


def read_fjsp(path: Path | str) -> SchedulingProblem:
    """Read a flexible job-shop file into a problem named after the file's stem.

    Raises:
        FjspError: the file cannot be read or is not in the format; every bad line named.
    """
    path = Path(path)
    try:
        if path.stat().st_size > MAX_BYTES:
            raise FjspError(Problem(f"larger than {MAX_BYTES} bytes", str(path)))
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise FjspError(Problem("not a text file (not UTF-8)", str(path))) from exc
    except OSError as exc:
        raise FjspError(Problem(f"cannot read: {exc.strerror or exc}", str(path))) from exc
    return parse_fjsp(text, source=str(path), name=path.stem)


def parse_fjsp(text: str, source: str = "<text>", name: str = "") -> SchedulingProblem:
    """Parse the text of a flexible job-shop file.

    Args:
        text: The whole file.
        source: What to call the file in error messages.
        name: The problem's name.

    Raises:
        FjspError: with every problem found, each with its line number.
    """
    lines = [(n, line.split()) for n, line in enumerate(text.splitlines(), start=1)]
    lines = [(n, tokens) for n, tokens in lines if tokens]
    if not lines:
        raise FjspError(Problem("empty file: expected 'n_jobs n_machines'", source))
    header_line, header = lines[0]
    n_jobs, n_machines = _header(header, source, header_line)
    job_lines = lines[1 : 1 + n_jobs]
    problems: list[Problem] = []
    if len(job_lines) < n_jobs:
        last = text.count("\n") + (0 if text.endswith("\n") else 1)
        problems.append(
            Problem(
                f"missing job lines: the header (line {header_line}) says {n_jobs} jobs, "
                f"the file has {len(job_lines)}",
                source,
                last,
            )
        )
    operations: list[Operation] = []
    for index, (line_no, tokens) in enumerate(job_lines, start=1):
        try:
            operations += _job(index, tokens, n_machines)
        except ValueError as exc:
            problems.append(Problem(f"job {index}: {exc}", source, line_no))
    if problems:
        raise FjspError(problems)
    return SchedulingProblem(
        operations=tuple(operations),
        machines=tuple(Machine(f"M{i}") for i in range(1, n_machines + 1)),
        jobs=tuple(Job(f"J{j}") for j in range(1, n_jobs + 1)),
        name=name,
    )


def _header(tokens: list[str], source: str, line: int) -> tuple[int, int]:
    def bad(reason: str) -> FjspError:
        return FjspError(Problem(f"header: {reason}", source, line))

    if len(tokens) not in (2, 3):
        raise bad(
            f"expected 'n_jobs n_machines [average machines per operation]', "
            f"found {len(tokens)} fields"
        )
    try:
        n_jobs, n_machines = int(tokens[0]), int(tokens[1])
    except ValueError:
        raise bad(
            f"n_jobs and n_machines must be integers, found {' '.join(tokens[:2])!r}"
        ) from None
    if n_jobs < 1 or n_machines < 1:
        raise bad("n_jobs and n_machines must be at least 1")
    if len(tokens) == 3:
        try:
            float(tokens[2])
        except ValueError:
            raise bad(
                f"the average machines per operation must be a number: {tokens[2]!r}"
            ) from None
    return n_jobs, n_machines


def _job(job: int, tokens: list[str], n_machines: int) -> list[Operation]:
    """The operations of one job line; ValueError with the reason when it does not add up."""
    values: list[int] = []
    for position, token in enumerate(tokens, start=1):
        try:
            values.append(int(token))
        except ValueError:
            raise ValueError(f"field {position} is not an integer: {token!r}") from None
    cursor = 0

    def take(what: str) -> int:
        nonlocal cursor
        if cursor >= len(values):
            raise ValueError(
                f"line ends after {len(values)} fields, but its counts need more "
                f"(expected {what} as field {cursor + 1})"
            )
        cursor += 1
        return values[cursor - 1]

    n_ops = take("the number of operations")
    if n_ops < 1:
        raise ValueError(f"number of operations must be at least 1, found {n_ops}")
    operations: list[Operation] = []
    for op in range(1, n_ops + 1):
        k = take(f"the machine count of operation {op}")
        if k < 1:
            raise ValueError(f"operation {op}: machine count must be at least 1, found {k}")
        durations: dict[str, int] = {}
        for _ in range(k):
            machine, time = take(f"a machine of operation {op}"), take(f"a time of operation {op}")
            if not 1 <= machine <= n_machines:
                raise ValueError(f"operation {op}: machine {machine} is not in 1..{n_machines}")
            if time < 0:
                raise ValueError(f"operation {op}: negative time {time} on machine {machine}")
            if f"M{machine}" in durations:
                raise ValueError(f"operation {op}: machine {machine} is listed twice")
            durations[f"M{machine}"] = time
        after = (f"J{job}.{op - 1}",) if op > 1 else ()
        operations.append(Operation(f"J{job}.{op}", f"J{job}", durations, after))
    if cursor != len(values):
        raise ValueError(
            f"{len(values) - cursor} fields left over: its counts ({n_ops} operations) "
            f"account for {cursor} of {len(values)}"
        )
    return operations


def read_bounds(instance: Path | str) -> Bounds | None:
    """Best-known bounds for an instance file, from ``bks.json`` in its directory.

    Returns None when there is no such file or it has no entry for the instance's stem.

    Raises:
        FjspError: ``bks.json`` exists but is not valid JSON of the expected shape.
    """
    instance = Path(instance)
    path = instance.parent / "bks.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FjspError(Problem(f"cannot read best-known bounds: {exc}", str(path))) from exc
    entry = data.get(instance.stem.lower()) if isinstance(data, dict) else None
    if entry is None:
        return None
    try:
        return Bounds(float(entry["lb"]), float(entry["ub"]))
    except (TypeError, KeyError, ValueError) as exc:
        raise FjspError(
            Problem(f"entry {instance.stem.lower()!r} needs numbers 'lb' and 'ub'", str(path))
        ) from exc
