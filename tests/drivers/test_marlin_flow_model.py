"""The Marlin line flow against a model of the firmware's serial handling, under every
interleaving hypothesis finds.

The model is Marlin's ``queue.cpp`` reduced to what the flow depends on: lines reach a
receive buffer in the order they were sent, whole or in two parts; the firmware checks a
line when its command queue (BUFSIZE 4) has room, before it has run the commands ahead
of it; a bad line is answered ``Resend: n`` and ``ok`` at once and the receive buffer is
emptied (``gcode_line_error``), so a line half arrived loses its head and its tail comes
as a line of its own, which the firmware runs as an unknown command (``echo:Unknown
command``, ``ok``); a good line is answered ``ok`` once it ran. Which of these happens
next is hypothesis's choice, so a rejection may overtake the ``ok`` of an earlier line,
lines may arrive before or after a buffer is emptied or be cut by it, and so on. (A cut
that leaves a tail starting at the command letter is left out: the firmware would run it
as a command, which no host can tell; docs/serial.md's reason for a window of 1.) When
nothing can move, the host times out as the driver does: it gives up one ``ok`` and sends
``M105``; with a window of 1 it may also time out while the firmware is only slow (a
stall as long as the timeout), and then the ``ok`` it gave up on comes late, before the
wake's ``ok T:...``.

What must hold whatever the order: the firmware runs the program exactly (nothing lost,
repeated or reordered), the host confirms each line once, in order and only after the
firmware ran it (a job ends when its last line is confirmed), and the flow never calls a
repaired link a resend loop.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.serial.marlin_codec import checksum
from drivers.serial.marlin_flow import LineFlow

BUFSIZE = 4


@dataclass
class Firmware:
    corrupt: dict[int, int]
    last_n: int = 0
    rx: deque[bytes] = field(default_factory=deque)
    partial: bytes | None = None  # the head of a line whose tail is still on the wire
    queue: deque[tuple[int | None, str]] = field(default_factory=deque)
    out: deque[str] = field(default_factory=deque)
    ran: list[str] = field(default_factory=list)
    errors: int = 0

    def receive(self, data: bytes, tail: bool) -> None:
        if not tail:
            self.rx.append(data)
            return
        line, self.partial = (self.partial or b"") + data, None
        if line.strip():
            self.rx.append(line)  # whole again, or a tail whose head was flushed

    def check(self) -> None:
        raw = self.rx.popleft().decode().strip()
        if not raw.startswith("N"):
            self.queue.append((None, raw))  # a tail: runs as an unknown command
            return
        body, _, given = raw.rpartition("*")
        number_text, _, command = body[1:].partition(" ")
        number = int(number_text)
        good = int(given) == checksum(body.encode())
        if self.corrupt.get(number, 0) > 0:
            self.corrupt[number] -= 1
            good = False
        if good and ("M110" in command or number == self.last_n + 1):
            self.last_n = number
            self.queue.append((number, command))
        else:
            self.errors += 1
            self.rx.clear()
            self.partial = None
            self.out.extend([f"Resend: {self.last_n + 1}", "ok"])

    def run(self) -> None:
        number, command = self.queue.popleft()
        if number is None:
            self.out.append(f'echo:Unknown command: "{command}"')
        else:
            self.ran.append(command)
        self.out.append("ok T:21.0" if command == "M105" else "ok")


def stream(
    program: list[str], window: int, corrupt: dict[int, int], seed: int, stalls: int = 0
) -> tuple[Firmware, list[str], int]:
    """Stream ``program`` through the model; hypothesis's seed picks every next event,
    ``stalls`` times a timeout while the firmware is only slow."""
    rng = random.Random(seed)
    flow: LineFlow[str] = LineFlow(window=window, max_resends=10)
    printer = Firmware(dict(corrupt))
    wire: deque[tuple[bytes, bool]] = deque([(flow.restart("hello"), False)])
    printer.last_n = -1
    todo = deque(program)
    confirmed: list[str] = []
    timeouts = 0
    wakes_given_up = 0

    def time_out() -> None:  # as MarlinCell._timed_out
        nonlocal wakes_given_up
        commands = flow.in_flight_commands()
        wake = bool(commands) and commands[0] == "M105"
        flow.release(late=not wake)
        wakes_given_up += wake
        if flow.can_send and not flow.replaying:
            todo.appendleft("M105")

    for _ in range(200_000):
        moves = []
        if wire:
            moves.append("deliver")
            if not wire[0][1] and printer.partial is None:
                moves.append("cut")
        if printer.rx and len(printer.queue) < BUFSIZE:
            moves.append("check")
        if printer.queue:
            moves.append("run")
        if printer.out:
            moves.append("read")
        if flow.can_resend or (flow.can_send and not flow.replaying and todo):
            moves.append("send")
        if stalls and window == 1 and flow.outstanding and moves:  # see LineFlow: Lost ok
            moves.append("stall")
        if not moves:
            if len(confirmed) == len(program) + 1:
                return printer, confirmed, timeouts
            timeouts += 1  # the driver's communication timeout: give up an ok, wake
            time_out()
            continue
        match rng.choice(moves):
            case "deliver":
                printer.receive(*wire.popleft())
            case "cut":
                data, _ = wire[0]
                at = rng.randrange(1, len(data))
                if data[at:].lstrip()[:1] not in (b"G", b"M"):
                    printer.partial = data[:at]
                    wire[0] = (data[at:], True)
            case "stall":
                stalls -= 1
                time_out()
            case "check":
                printer.check()
            case "run":
                printer.run()
            case "read":
                line = printer.out.popleft()
                if line.startswith("echo:Unknown command"):
                    assert flow.unknown(line.split('"')[1])
                elif line.startswith("ok"):
                    m105 = line != "ok"  # as MarlinCell._on_ok
                    if m105 and wakes_given_up and "M105" not in flow.in_flight_commands():
                        wakes_given_up -= 1
                        continue
                    answered = flow.ok(lambda command, m105=m105: (command == "M105") == m105)
                    news = [t for t in answered if t != "M105"]
                    ran = [c for c in printer.ran if c != "M105"]  # the hello is M110 N0
                    assert len(ran) >= len(confirmed) + len(news), (
                        "a line was confirmed before the printer ran it"
                    )
                    confirmed.extend(news)
                else:
                    flow.resend(int(line.split(":")[1]))
            case "send":
                data = flow.resend_next()
                if data is None and not flow.replaying:
                    command = todo.popleft()
                    data = flow.send(command, command)
                if data is not None:
                    wire.append((data, False))
    raise AssertionError("the stream never ended")


@settings(max_examples=300, deadline=None)
@given(
    window=st.integers(1, 4),
    corrupt=st.dictionaries(st.integers(1, 40), st.integers(1, 3), max_size=6),
    seed=st.integers(0, 2**32 - 1),
    stalls=st.integers(0, 2),
)
def test_the_program_runs_exactly_once_in_order_whatever_the_interleaving(
    window: int, corrupt: dict[int, int], seed: int, stalls: int
) -> None:
    program = [f"G1 X{i}" for i in range(40)]
    printer, confirmed, timeouts = stream(program, window, corrupt, seed, stalls)
    assert [c for c in printer.ran if c not in ("M105", "M110 N0")] == program
    assert confirmed == ["hello", *program]
    assert timeouts <= 2 * (sum(corrupt.values()) + stalls) + 2
