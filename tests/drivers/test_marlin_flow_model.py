"""The Marlin line flow against a model of the firmware's serial handling, under every
interleaving hypothesis finds.

The model is Marlin's ``queue.cpp`` reduced to what the flow depends on: lines reach a
receive buffer in the order they were sent; the firmware checks a line when its command
queue (BUFSIZE 4) has room, before it has run the commands ahead of it; a bad line is
answered ``Resend: n`` and ``ok`` at once and the receive buffer is emptied
(``gcode_line_error``); a good line is answered ``ok`` once it ran. Which of these happens
next is hypothesis's choice, so a rejection may overtake the ``ok`` of an earlier line,
lines may arrive before or after a buffer is emptied, and so on. When nothing can move,
the host times out as the driver does: it gives up one ``ok`` and sends ``M105``.

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
    queue: deque[tuple[int, str]] = field(default_factory=deque)
    out: deque[str] = field(default_factory=deque)
    ran: list[str] = field(default_factory=list)
    errors: int = 0

    def check(self) -> None:
        raw = self.rx.popleft().decode().strip()
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
            self.out.extend([f"Resend: {self.last_n + 1}", "ok"])

    def run(self) -> None:
        _, command = self.queue.popleft()
        self.ran.append(command)
        self.out.append("ok")


def stream(
    program: list[str], window: int, corrupt: dict[int, int], seed: int
) -> tuple[Firmware, list[str], int]:
    """Stream ``program`` through the model; hypothesis's seed picks every next event."""
    rng = random.Random(seed)
    flow: LineFlow[str] = LineFlow(window=window, max_resends=10)
    printer = Firmware(dict(corrupt))
    wire: deque[bytes] = deque([flow.restart("hello")])
    printer.last_n = -1
    todo = deque(program)
    confirmed: list[str] = []
    timeouts = 0
    for _ in range(200_000):
        moves = []
        if wire:
            moves.append("deliver")
        if printer.rx and len(printer.queue) < BUFSIZE:
            moves.append("check")
        if printer.queue:
            moves.append("run")
        if printer.out:
            moves.append("read")
        if flow.can_resend or (flow.can_send and not flow.replaying and todo):
            moves.append("send")
        if not moves:
            if len(confirmed) == len(program) + 1:
                return printer, confirmed, timeouts
            timeouts += 1  # the driver's communication timeout: give up an ok, wake
            flow.release()
            if flow.can_send and not flow.replaying:
                todo.appendleft("M105")
            continue
        match rng.choice(moves):
            case "deliver":
                printer.rx.append(wire.popleft())
            case "check":
                printer.check()
            case "run":
                printer.run()
            case "read":
                line = printer.out.popleft()
                if line == "ok":
                    news = [t for t in flow.ok() if t != "M105"]
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
                    wire.append(data)
    raise AssertionError("the stream never ended")


@settings(max_examples=300, deadline=None)
@given(
    window=st.integers(1, 4),
    corrupt=st.dictionaries(st.integers(1, 40), st.integers(1, 3), max_size=6),
    seed=st.integers(0, 2**32 - 1),
)
def test_the_program_runs_exactly_once_in_order_whatever_the_interleaving(
    window: int, corrupt: dict[int, int], seed: int
) -> None:
    program = [f"G1 X{i}" for i in range(40)]
    printer, confirmed, timeouts = stream(program, window, corrupt, seed)
    assert [c for c in printer.ran if c not in ("M105", "M110 N0")] == program
    assert confirmed == ["hello", *program]
    assert timeouts <= 2 * sum(corrupt.values()) + 2
