"""Every error the controller raises on purpose, grouped by what the caller does next.

- :class:`ConfigError`, :class:`OrderError`: fix the input and try again; nothing was
  accepted. Both carry a list of :class:`Problem` (file, line, key path, reason).
- :class:`DomainError`: a request the current state does not allow (an illegal
  transition, an unknown id); refuse it and say why.
- :class:`DeviceError` and subclasses: raised at the driver boundary. ``DeviceUnavailable``
  means retry later (the supervisor backs off); ``JobRejected`` means the cell refused
  this job (put the step back); ``DeviceFault`` means fault the cell.
- :class:`StoreError`: the store cannot be reached or is not ours; stop acting.

Library exceptions are translated where they enter, always ``raise ... from exc``.
"""

from __future__ import annotations

from dataclasses import dataclass


class MesError(Exception):
    """Root of every error this project raises on purpose."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an input: where it is and why it is wrong."""

    reason: str
    file: str = ""
    line: int | None = None
    path: str = ""

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where = f"{where}:{self.line}" if where else f"line {self.line}"
        parts = [p for p in (where, self.path) if p]
        return f"{': '.join(parts)}: {self.reason}" if parts else self.reason


class InputError(MesError):
    """Input that cannot be accepted; carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem] | Problem | str) -> None:
        if isinstance(problems, str):
            problems = [Problem(problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class ConfigError(InputError):
    """The plant or product configuration is invalid: fix the file."""


class OrderError(InputError):
    """An order was refused whole: fix the order file; nothing was released."""


class DomainError(MesError):
    """A request that the current state of the plant does not allow."""


class InvalidTransition(DomainError):
    """A state machine was asked for a transition its table does not have."""

    def __init__(self, subject: str, state: str, event: str) -> None:
        self.subject = subject
        self.state = state
        self.event = event
        super().__init__(f"{subject}: cannot {event!r} while {state!r}")


class NotFound(DomainError):
    """No order, unit, step or cell with that id."""


class DeviceError(MesError):
    """Something went wrong talking to a cell."""


class DeviceUnavailable(DeviceError):
    """The cell cannot be reached now (disconnected, timed out): retry later."""


class JobRejected(DeviceError):
    """The cell refused the job (busy, bad program, wrong id echoed): reassign the step."""


class DeviceFault(DeviceError):
    """The cell reported a fault: fault the cell and the job it was running."""

    def __init__(self, message: str, code: str = "") -> None:
        self.code = code
        super().__init__(f"[{code}] {message}" if code else message)


class NotSupported(DeviceError):
    """The cell cannot do this (e.g. hold on a device without a pause command)."""


class StoreError(MesError):
    """The store cannot be reached, or its schema is not one this version knows."""


class Fenced(StoreError):
    """This controller no longer owns what it tried to write: another controller took
    the cell's lease (a newer fencing token) or the unit's custody. The write is refused
    whole; the controller stops, and its work goes on where it went."""
