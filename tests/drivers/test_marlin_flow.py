"""The Marlin line flow (numbers, window, resends, ghosts) as pure tests, case by case.

Its behaviour under every interleaving is ``test_marlin_flow_model.py``; the driver
streaming through the simulated printer is ``test_marlin.py``.
"""

from __future__ import annotations

from typing import Any

import pytest

from drivers.serial import marlin_codec as codec
from drivers.serial.marlin_flow import LineFlow, NoHistory, ResendLoop


def sent(flow: LineFlow[Any], *commands: str) -> list[bytes]:
    return [flow.send(c, c) for c in commands]


def test_a_resend_replays_the_history_with_the_original_numbers() -> None:
    flow: LineFlow[str] = LineFlow()
    flow.restart("hello")
    assert flow.ok() == ["hello"]
    sent(flow, "G1 X1")
    flow.resend(1)
    assert flow.ok() == []  # the ok answering the rejected line confirms nothing
    assert flow.replaying and flow.resend_next() == codec.frame(1, "G1 X1")
    assert flow.ok() == ["G1 X1"]
    assert flow.resent == 1


def test_with_a_window_lines_behind_a_rejected_one_are_ghosts() -> None:
    flow: LineFlow[str] = LineFlow(window=3)
    flow.restart("hello")
    flow.ok()
    sent(flow, "A1", "A2", "A3")  # lines 1..3; 1 arrives garbled
    flow.resend(1)
    assert flow.ok() == []
    assert flow.resend_next() == codec.frame(1, "A1")  # 2 and 3 left the window
    flow.resend(1)  # line 2 arrived after the printer emptied its buffer: a ghost's request
    assert flow.ok() == []  # ... and its ok
    assert flow.resend_next() is None  # the replay goes a line at a time
    assert flow.ok() == ["A1"]  # line 3's ghost vanished: the replay is answered
    assert flow.resend_next() == codec.frame(2, "A2")
    assert flow.ok() == ["A2"]
    assert flow.resend_next() == codec.frame(3, "A3")
    assert flow.ok() == ["A3"]
    assert not flow.replaying


def test_the_tail_of_a_ghost_cut_by_a_flush_answers_no_line() -> None:
    """Marlin empties its buffer on a bad line; a line sent behind it that was half in
    the buffer loses its head and its tail arrives as a line of its own: an unknown
    command and an ok that must not be taken for the replayed line's."""
    flow: LineFlow[str] = LineFlow(window=3)
    flow.restart("hello")
    flow.ok()
    sent(flow, "G1 X1", "G1 X2", "G1 X3")
    flow.resend(1)
    assert flow.ok() == []
    assert flow.resend_next() == codec.frame(1, "G1 X1")
    assert codec.parse('echo:Unknown command: "2*33"') == codec.Unknown("2*33")
    assert flow.unknown("2*33")  # the tail of line 2
    assert flow.ok() == []  # ... its ok
    assert flow.ok() == ["G1 X1"]  # line 3 vanished: the replay is answered
    assert flow.resend_next() == codec.frame(2, "G1 X2")
    assert not flow.unknown("G1 X2")  # one of ours the printer does not know: counted
    assert flow.ok() == ["G1 X2"]


@pytest.mark.parametrize("window", [1, 3])
@pytest.mark.parametrize("quoted", ["M999 S1", "M999 S1*95", "M999"])
def test_an_unknown_command_of_ours_is_answered_as_usual(window: int, quoted: str) -> None:
    flow: LineFlow[str] = LineFlow(window=window)
    flow.restart("hello")
    flow.ok()
    sent(flow, "M999 S1")
    assert not flow.unknown(quoted)  # Marlin quotes it whole, Klipper only its name
    assert flow.ok() == ["M999 S1"]


def test_a_rejection_that_overtakes_the_oks_of_lines_taken_before_it_is_placed_right() -> None:
    """Marlin checks a line on arrival but answers the lines ahead of it only once they
    ran, so the request for line 2 comes before the ok of line 1 (the CI failure of a
    window of three: the request was charged to line 1 and the oks shifted by one)."""
    flow: LineFlow[str] = LineFlow(window=3)
    flow.restart("hello")
    flow.ok()
    sent(flow, "A1", "A2", "A3")
    flow.resend(2)  # 1 taken, 2 garbled, 3 erased with the buffer
    assert flow.ok() == []  # the rejection's own ok
    assert flow.resend_next() == codec.frame(2, "A2")
    assert flow.ok() == ["A1"]  # line 1 ran
    assert flow.resend_next() is None  # 2 not answered yet
    assert flow.ok() == ["A2"]
    assert flow.resend_next() == codec.frame(3, "A3")
    assert flow.ok() == ["A3"]


def test_the_same_line_asked_for_again_and_again_is_a_loop() -> None:
    flow: LineFlow[str] = LineFlow(max_resends=3)
    flow.restart("hello")
    flow.ok()
    sent(flow, "G1 X1")
    for _ in range(3):
        flow.resend(1)
        flow.ok()
        assert flow.resend_next() == codec.frame(1, "G1 X1")
    with pytest.raises(ResendLoop, match=r"line 1 again and again \(4 times\)"):
        flow.resend(1)


def test_a_line_older_than_the_history_cannot_be_resent() -> None:
    flow: LineFlow[str] = LineFlow(history=2)
    flow.restart("hello")
    flow.ok()
    for command in ("A", "B", "C"):
        sent(flow, command)
        flow.ok()
    with pytest.raises(NoHistory, match=r"line 1 but the history holds lines 2..3"):
        flow.resend(1)


def test_a_lost_ok_is_made_good_by_the_next_confirmation() -> None:
    flow: LineFlow[str] = LineFlow()
    flow.restart("hello")
    flow.ok()
    sent(flow, "G1 X1")
    assert not flow.can_send
    assert flow.release()  # a timeout: assume its ok was lost
    sent(flow, "M105")
    assert flow.ok() == ["G1 X1", "M105"]


def test_after_a_renumber_requests_for_void_lines_resend_the_m110() -> None:
    flow: LineFlow[str] = LineFlow()
    flow.restart("hello")
    flow.ok()
    sent(flow, "G1 X1")
    flow.ok()
    assert flow.renumber("reset") == codec.frame(2, "M110 N2")
    flow.resend(1)  # the M110 arrived garbled: the printer still wants line 1
    flow.ok()
    assert flow.resend_next() == codec.frame(2, "M110 N2")


def bare_ok(command: str) -> bool:
    return codec.word(command) != "M105"


def m105_ok(command: str) -> bool:
    return codec.word(command) == "M105"


def test_an_ok_late_rather_than_lost_answers_its_line_not_the_wake() -> None:
    """A printer stalled as long as the timeout answers the line after the driver gave
    up on it and sent ``M105``: that bare ok is the line's, the ``ok T:`` the wake's
    (taken for the wake's, every later answer shifted by one, two lines in flight)."""
    flow: LineFlow[str] = LineFlow()
    flow.restart("hello")
    flow.ok()
    sent(flow, "G1 X1")
    assert flow.release(late=True)
    sent(flow, "M105")
    assert flow.ok(bare_ok) == ["G1 X1"]  # late, not lost
    assert not flow.can_send  # the wake still awaits its answer
    assert flow.ok(m105_ok) == ["M105"]
    sent(flow, "G1 X2")
    assert flow.ok(bare_ok) == ["G1 X2"]


def test_an_ok_lost_for_good_is_made_good_by_the_wake() -> None:
    flow: LineFlow[str] = LineFlow()
    flow.restart("hello")
    flow.ok()
    sent(flow, "G1 X1")
    assert flow.release(late=True)
    sent(flow, "M105")
    assert flow.ok(m105_ok) == ["G1 X1", "M105"]  # the wake's answer: the line ran
    sent(flow, "G1 X2")
    assert flow.ok(bare_ok) == ["G1 X2"]  # the late line is forgotten
