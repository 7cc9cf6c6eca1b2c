"""Numbered lines, a send window counted in ``ok``s, and resends from a bounded history.

Pure: no I/O, no clock. The driver feeds it what the printer said and writes what it
returns.

Theory of operation:

* **Window.** Every command goes out numbered, with its checksum. Marlin answers every
  line it reads with exactly one ``ok``, also the lines it rejects (``Error:...``,
  ``Resend: n``, ``ok``), so the transmissions awaiting an ``ok`` form a FIFO: the next
  ``ok`` answers the oldest. ``window`` bounds that FIFO; the default 1 is ping-pong, as
  OctoPrint (``ackMax``) and Printrun send. More than Marlin's command buffer (BUFSIZE,
  4 by default) only fills its 128-byte serial buffer, and overflowing it garbles lines.
* **Confirmation.** Marlin takes line ``n`` only right after ``n - 1``, so an ``ok`` that
  answers transmission ``n`` without a resend request confirms every line up to ``n``.
  :meth:`LineFlow.ok` returns the tags of the lines it confirms, in order and each once,
  also lines whose own ``ok`` was lost.
* **Resend.** ``Resend: k`` says the printer wants line ``k`` next: it took every line
  before ``k``. Its ``ok`` follows it at once and answers the rejection, never an older
  line, so it is always swallowed. Marlin checks a line when it reads it, before it has
  executed the lines ahead of it in its queue, so a rejection can arrive before the
  ``ok`` of each line it took earlier: those stay in the FIFO (numbered below ``k``), the
  first transmission numbered ``k`` or above is the rejected one. With a window above 1,
  the lines sent behind it are in doubt: Marlin empties its serial buffer when it rejects
  a line (``gcode_line_error``), so those still in it vanish without an answer, and those
  arriving later each draw ``Resend: k`` and an ``ok`` of their own. They leave the FIFO
  as *ghosts*: a request for ``k`` while ghosts remain is a ghost's. The replay of
  ``k .. next-1`` then goes one line at a time, each sent once the one before it is
  answered: a line sent behind a replayed line that a ghost's rejection erased would only
  become a ghost itself, and ghosts breeding ghosts is the resend storm hosts with a
  window meet. The first ``ok`` for a line sent after the ghosts proves every ghost has
  been read or erased (the line is FIFO both ways). A flush may also cut a ghost in two:
  its head goes with the buffer and its tail arrives as a line of its own, which Marlin
  runs unnumbered, usually as ``echo:Unknown command: "<tail>"`` and an ``ok``
  (:meth:`LineFlow.unknown`: that ``ok`` answers no transmission; a tail that happens to
  start at the command letter would run as a command, which no host can tell or undo:
  the reason a window above 1 is a risk). A request for the line not yet sent
  answers a line the printer already had (sent twice, or still on the wire when it
  restarted): nothing is replayed. The same line asked for more than ``max_resends``
  times in a row without progress past it is a loop: :class:`ResendLoop`
  (OctoPrint#3914). A line older than the history: :class:`NoHistory`.
* **Lost ok.** :meth:`LineFlow.release` forgets the oldest transmission and frees its
  credit (the driver calls it after a communication timeout and sends ``M105``); a
  silence that long also means no ghost is still on its way. If the line itself was lost,
  that next numbered line draws a resend request and the history repairs the gap. The
  ``ok`` was perhaps only late (a printer stalled as long as the timeout): then it comes
  before the wake's, and taken for the wake's it would shift every later answer by one,
  one line more in flight than the window for the rest of the job. So a line released
  after a timeout stays *late* until an answer to a line sent after it comes, and an
  ``ok`` that cannot answer the oldest in flight (:meth:`LineFlow.ok` is told what it can
  answer: the wake's ``ok T:...`` carries temperatures, a line's ``ok`` none) is its. With
  a window above 1, lines of one kind are in flight beside the wake and a late ``ok``
  cannot be told from theirs.
* **Renumber.** :meth:`LineFlow.renumber` frames ``M110 N<n>``, which Marlin takes
  whatever line it expected; replay, history and unconfirmed lines are dropped. The hello
  (:meth:`LineFlow.restart`) is the same from line 0.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from drivers.serial.marlin_codec import frame

T = TypeVar("T")


class LinkBroken(Exception):
    """The line numbering cannot be repaired; the link must be reset."""


class ResendLoop(LinkBroken):
    """The printer keeps asking for one line."""


class NoHistory(LinkBroken):
    """The printer asked for a line the history no longer holds."""


@dataclass(slots=True)
class Sent:
    """One transmission awaiting its ``ok``."""

    number: int
    command: str
    epoch: int
    seq: int  # the order of transmissions, replays included


class LineFlow(Generic[T]):
    """The sending side of one printer link (see the module docstring).

    Attributes:
        next_number: The number the next new line gets.
        resent: Lines sent again on request, since the last restart.
    """

    def __init__(self, *, window: int = 1, history: int = 50, max_resends: int = 10) -> None:
        if window < 1 or history < 1 or max_resends < 1:
            raise ValueError("window, history and max_resends must be >= 1")
        self.window = window
        self.history_size = history
        self.max_resends = max_resends
        self.next_number = 0
        self.resent = 0
        self._history: OrderedDict[int, str] = OrderedDict()
        self._in_flight: deque[Sent] = deque()
        self._unconfirmed: deque[tuple[int, T]] = deque()
        self._replay: deque[int] = deque()
        self._epoch = 0
        self._target: int | None = None
        self._asked: tuple[int, int] | None = None  # (line, times in a row)
        self._ghosts = 0  # transmissions behind a rejected one, in doubt
        self._doubt: list[Sent] = []  # which they were
        self._late: deque[Sent] = deque()  # released after a timeout: their ok may come
        self._ghosts_until = -1  # seq of the last of them
        self._swallow = 0  # oks that answer rejections, not lines
        self._seq = 0
        self._probe: int | None = None  # seq of the replayed line awaiting its answer
        self._floor = 0  # number of the last M110: older lines are gone for good

    def __repr__(self) -> str:
        return (
            f"<LineFlow next={self.next_number} in_flight={len(self._in_flight)}/{self.window} "
            f"replay={len(self._replay)}>"
        )

    # -- state --------------------------------------------------------------------------

    @property
    def outstanding(self) -> int:
        """Transmissions awaiting their ``ok``."""
        return len(self._in_flight)

    @property
    def can_send(self) -> bool:
        """A credit is free (fewer than ``window`` lines await an ``ok``)."""
        return len(self._in_flight) < self.window

    @property
    def replaying(self) -> bool:
        """Lines wait to be sent again; nothing new may go out before them."""
        return bool(self._replay)

    @property
    def can_resend(self) -> bool:
        """The next line of a replay may go out now (:meth:`resend_next`)."""
        return bool(self._replay) and self.can_send and self._probe is None

    def in_flight_commands(self) -> list[str]:
        """The commands awaiting an ``ok``, oldest first."""
        return [s.command for s in self._in_flight]

    # -- sending ------------------------------------------------------------------------

    def _transmit(self, number: int, command: str) -> bytes:
        self._seq += 1
        self._in_flight.append(Sent(number, command, self._epoch, self._seq))
        return frame(number, command)

    def _remember(self, number: int, command: str) -> None:
        self._history[number] = command
        while len(self._history) > self.history_size:
            self._history.popitem(last=False)

    def send(self, command: str, tag: T) -> bytes:
        """Number ``command``, remember it, and return its frame.

        Raises:
            RuntimeError: no credit is free, or a replay is pending (a caller's bug).
        """
        if not self.can_send or self._replay:
            raise RuntimeError(f"{self!r}: cannot send a new line now")
        number = self.next_number
        self.next_number += 1
        self._remember(number, command)
        self._unconfirmed.append((number, tag))
        return self._transmit(number, command)

    def resend_next(self) -> bytes | None:
        """The next line of a pending replay (if a credit is free and the line replayed
        before it was answered), else None."""
        if not self.can_resend:
            return None
        number = self._replay.popleft()
        self.resent += 1
        data = self._transmit(number, self._history[number])
        self._probe = self._seq
        return data

    def renumber(self, tag: T) -> bytes:
        """``M110 N<n>`` as line ``n``: drop replay, history and unconfirmed lines."""
        number = self.next_number
        self._replay.clear()
        self._history.clear()
        self._unconfirmed.clear()
        self._target = self._probe = None
        self._asked = None
        self._epoch += 1  # requests drawn by lines sent before this one are void
        self._floor = number
        self.next_number = number + 1
        command = f"M110 N{number}"
        self._remember(number, command)
        self._unconfirmed.append((number, tag))
        return self._transmit(number, command)

    def restart(self, tag: T) -> bytes:
        """Forget everything (a new connection, a rebooted printer) and frame the hello
        ``N0 M110 N0``."""
        self._in_flight.clear()
        self._ghosts = self._swallow = 0
        self._doubt = []
        self._late.clear()
        self.next_number = 0
        self.resent = 0
        return self.renumber(tag)

    # -- receiving ----------------------------------------------------------------------

    def _confirm(self, number: int) -> list[T]:
        if self._asked is not None and number >= self._asked[0]:
            self._asked = None  # progress past the line asked for: not a loop
        tags: list[T] = []
        while self._unconfirmed and self._unconfirmed[0][0] <= number:
            tags.append(self._unconfirmed.popleft()[1])
        return tags

    def _answered(self, sent: Sent) -> None:
        if sent.seq > self._ghosts_until:
            self._ghosts, self._doubt = 0, []  # a line after the ghosts is answered
        if sent.seq == self._probe:
            self._probe = None

    def ok(self, answers: Callable[[str], bool] | None = None) -> list[T]:
        """An ``ok``: it answers the oldest transmission, or the rejection just before it;
        the tags now confirmed.

        Args:
            answers: Which commands this ``ok`` can answer. If it cannot answer the
                oldest in flight but can one released late after a timeout, it is that
                one's late ``ok`` (the first such; those before it were lost).
        """
        if self._swallow:
            self._swallow -= 1
            return []
        if self._late and answers is not None:
            if not (self._in_flight and answers(self._in_flight[0].command)):
                for index, sent in enumerate(self._late):
                    if answers(sent.command):
                        for _ in range(index + 1):
                            self._late.popleft()
                        return self._confirm(sent.number)
            self._late.clear()  # a line sent after them is answered: their oks were lost
        if not self._in_flight:
            return []  # late ok for a transmission released after a timeout
        sent = self._in_flight.popleft()
        self._answered(sent)
        return self._confirm(sent.number)

    def ok_for(self, number: int) -> list[T]:
        """An ``ok`` known to answer line ``number`` (the handshake knows which line the
        printer is answering): whatever older answers were still owed are void."""
        self._ghosts = self._swallow = 0
        self._doubt = []
        self._late.clear()
        while self._in_flight and self._in_flight[0].number <= number:
            self._answered(self._in_flight.popleft())
        return self._confirm(number)

    def release(self, *, late: bool = False) -> bool:
        """Give up on the oldest transmission's ``ok``; False if none waits.

        Args:
            late: Its ``ok`` may still come (a timeout, not a printer saying it idles);
                kept for :meth:`ok` to match. A silence as long as a timeout also means
                no ghost is still on its way.
        """
        self._ghosts = self._swallow = 0
        self._doubt = []
        if not self._in_flight:
            return False
        sent = self._in_flight.popleft()
        self._answered(sent)
        if late:
            self._late.append(sent)
        return True

    def unknown(self, text: str) -> bool:
        """The printer ran a line it did not know (``echo:Unknown command: "<text>"``);
        whether it was a stray (True), whose ``ok``, right behind, answers nothing.

        One of our commands in flight (however the firmware quotes it: whole, with its
        checksum, or only its first word) is answered as usual. Anything else is the tail
        of a line that a flush cut in two (a line behind a rejected one: with a window
        above 1, or the ``M105`` a timeout sent): the answer of one ghost or, if it is the
        tail of the replayed line and of no ghost, the replayed line lost its head to a
        ghost's flush (every ghost is read by then) and goes again.
        """
        tail = text.strip()
        command = tail.rsplit("*", 1)[0].strip()  # Marlin may quote the checksum too
        first = command.split(" ", 1)[0]
        if any(
            sent.command == command or sent.command.split(" ", 1)[0] == first
            for sent in self._in_flight
        ):
            return False
        self._swallow += 1
        probe = next((sent for sent in self._in_flight if sent.seq == self._probe), None)
        if (
            probe is not None
            and _cut(probe, tail)
            and not any(_cut(ghost, tail) for ghost in self._doubt)
        ):
            self._in_flight.remove(probe)
            self._probe = None
            self._replay.appendleft(probe.number)
            self._ghosts, self._doubt = 0, []
        elif self._ghosts:
            self._ghosts -= 1
        return True

    def resend(self, number: int) -> None:
        """The printer asked for everything again from line ``number``.

        Raises:
            ResendLoop: the same line was asked for more than ``max_resends`` times.
            NoHistory: the line is older than the history, or was never sent.
        """
        self._swallow += 1  # the ok right behind a request answers the rejection
        if self._ghosts and number == self._target:
            self._ghosts -= 1
            return  # drawn by a line sent behind the rejected one
        if number == self.next_number:
            return  # drawn by a line it already had: it has every line we sent
        # Lines numbered below the request (since the last M110) were taken and wait for
        # their ok; the first transmission after them is the one rejected.
        flight = self._in_flight
        index = 0
        while index < len(flight) and (
            flight[index].epoch == self._epoch and self._floor <= flight[index].number < number
        ):
            index += 1
        if index < len(flight):
            rejected = flight[index]
            if rejected.epoch < self._epoch and number < self._floor:
                del flight[index]
                return  # drawn by a line sent before the M110 that voided it
        if number < self._floor or (number not in self._history and number < self.next_number):
            if self._floor in self._history and number < self._floor:
                number = self._floor  # lines before an M110 are void: resend the M110
            else:
                oldest = next(iter(self._history), self.next_number)
                raise NoHistory(
                    f"printer requested line {number} but the history holds lines "
                    f"{oldest}..{self.next_number - 1} only; cannot resend"
                )
        if number > self.next_number:
            raise NoHistory(
                f"printer requested line {number}, but the last line sent is {self.next_number - 1}"
            )
        times = self._asked[1] + 1 if self._asked and self._asked[0] == number else 1
        self._asked = (number, times)
        if times > self.max_resends:
            raise ResendLoop(
                f"printer keeps requesting line {number} again and again ({times} times), "
                "communication stuck"
            )
        if index < len(flight):  # the rejected line leaves; those behind it are ghosts
            self._ghosts = len(flight) - index - 1
            self._doubt = list(flight)[index + 1 :]
            self._ghosts_until = flight[-1].seq
            while len(flight) > index:
                flight.pop()
        self._probe = None
        self._target = number
        self._replay = deque(range(number, self.next_number))


def _cut(sent: Sent, tail: str) -> bool:
    """``tail`` is what is left of ``sent``'s frame without its head."""
    whole = frame(sent.number, sent.command).decode("ascii", "replace").strip()
    return len(tail) < len(whole) and whole.endswith(tail)
