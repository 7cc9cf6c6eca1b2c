"""The Unified Namespace (mes.mqtt.topics) and what a batch of changes tells it
(mes.mqtt.messenger): pure, with the domain's own state machines making the changes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from mes.domain import Cell, CellEvent, Event, Step, StepEvent, StepState, Unit, UnitEvent
from mes.mqtt.messenger import Messenger, namespace
from mes.mqtt.topics import directives, finish
from mes.store import Changes, Message

T0 = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)
NS = namespace(
    "acme", "works-1", [("press-1", "hall-1", "line-a"), ("press-2", "", "")], ("main", "l0")
)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def messenger() -> Messenger:
    return Messenger(NS, clock=lambda: at(999), progress_step=0.1)


def payload(message: Message) -> dict[str, Any]:
    value = json.loads(message.payload)
    assert isinstance(value, dict)
    return value


def by_topic(messages: list[Message]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for m in messages:
        out.setdefault(m.topic, []).append(payload(m))
    return out


def unit_with_step() -> tuple[Unit, Step]:
    unit = Unit("SO-1.1", "SO-1", 1, "sign", {"text": "Hi"}, T0)
    step = Step("SO-1.1/route", unit.id, 1, "route", "cnc.route", "p1", 60.0)
    unit.steps.append(step)
    return unit, step


def test_the_tree() -> None:
    assert NS.cell("press-1", "state") == "acme/works-1/hall-1/line-a/press-1/state"
    assert NS.cell("press-2", "events") == "acme/works-1/main/l0/press-2/events"
    assert NS.cell("unknown", "state") == "acme/works-1/main/l0/unknown/state"
    assert NS.unit("SO-1.1", "state") == "acme/works-1/units/SO-1.1/state"
    assert (NS.alarms, NS.status) == ("acme/works-1/alarms", "acme/works-1/mes/status")
    assert (NS.orders_in, NS.orders_results) == (
        "acme/works-1/orders/in",
        "acme/works-1/orders/results",
    )


def test_a_dispatch_tells_the_cell_and_the_unit_in_journal_order() -> None:
    unit, step = unit_with_step()
    cell = Cell("press-1", frozenset({"cnc.route"}), "sim")
    changes = Changes()
    changes.add(Event.of(cell.handle(CellEvent.CONNECT, at(0)), "controller"), cell)
    m = messenger()
    first = m(changes)
    assert [x.topic for x in first] == [
        "acme/works-1/hall-1/line-a/press-1/events",
        "acme/works-1/hall-1/line-a/press-1/state",
    ]
    state = payload(first[1])
    assert first[1].retain and not first[0].retain
    assert (state["state"], state["since"], state["transition"]) == (
        "idle",
        "2026-05-04T08:00:00.000000Z",
        "connect",
    )

    changes = Changes()
    step.handle(StepEvent.READY, at(1))
    changes.add(Event.of(step.dispatch("press-1", 7, at(1)), "controller", job_id=7))
    changes.add(Event.of(cell.handle(CellEvent.START, at(1)), "controller", job_id=7))
    cell.job_id = 7
    changes.add(Event.of(unit.handle(UnitEvent.START, at(1)), "controller"), unit)
    changes.add(step, cell)
    topics = by_topic(m(changes))
    assert [e["transition"] for e in topics["acme/works-1/units/SO-1.1/events"]] == [
        "dispatch",
        "start",
    ]
    (cell_state,) = topics["acme/works-1/hall-1/line-a/press-1/state"]
    assert (cell_state["job"], cell_state["unit"], cell_state["step"]) == (
        7,
        "SO-1.1",
        "SO-1.1/route",
    )
    (unit_state,) = topics["acme/works-1/units/SO-1.1/state"]
    assert unit_state["state"] == "in_progress"
    assert unit_state["options"] == {"text": "Hi"}
    # Every journal-made payload asks for its entry's id.
    assert directives(unit_state).journal == ("unit", "SO-1.1", "start", unit_state["since"])


def test_progress_alone_is_told_only_when_it_moved_enough() -> None:
    cell = Cell("press-2", frozenset({"test"}), "sim")
    m = messenger()
    changes = Changes()
    changes.add(Event.of(cell.handle(CellEvent.CONNECT, at(0)), "controller"), cell)
    m(changes)
    told = [m(Changes(progress={"press-2": p})) for p in (0.03, 0.08, 0.12, 0.15, 0.31)]
    assert [len(x) for x in told] == [0, 0, 1, 0, 1]
    assert payload(told[2][0])["progress"] == 0.12
    assert payload(told[2][0])["at"] == "2026-05-04T08:16:39.000000Z"  # the clock: no entry
    # A cell never seen (before its first transition since start) is not guessed at.
    assert m(Changes(progress={"press-1": 0.5})) == []


def test_a_unit_riding_along_without_a_transition_is_not_told_again() -> None:
    unit, step = unit_with_step()
    changes = Changes()
    changes.add(Event.of(step.handle(StepEvent.READY, at(1)), "controller"), step, unit)
    told = messenger()(changes)
    assert [x.topic for x in told] == ["acme/works-1/units/SO-1.1/events"]


def test_a_release_tells_each_unit_and_its_entries() -> None:
    unit, step = unit_with_step()
    events = [
        Event(at(0), "planner", "unit", unit.id, "release", "", "released", {"order": "SO-1"}),
        Event.of(step.handle(StepEvent.READY, at(0)), "planner"),
    ]
    topics = by_topic(messenger().released([unit], events))
    assert [e["transition"] for e in topics["acme/works-1/units/SO-1.1/events"]] == [
        "release",
        "ready",
    ]
    assert topics["acme/works-1/units/SO-1.1/state"][0]["state"] == "released"


def test_alarms_raised_cleared_acknowledged_and_no_clear_of_nothing() -> None:
    m = messenger()
    changes = Changes()
    changes.clear("press-1", "link", at(0))  # nothing active: nothing to tell
    changes.alarm("medium", "link lost", at(1), cell="press-1", subject="link", code="offline")
    told = m(changes)
    assert [payload(x)["change"] for x in told] == ["raised"]
    raised = payload(told[0])
    assert directives(raised).alarm == ("2026-05-04T08:00:01.000000Z", "press-1", "link", "offline")
    changes = Changes()
    changes.clear("press-1", "", at(2))
    changes.acks[12] = ("ann", at(3))
    told = m(changes)
    assert [(payload(x)["change"], payload(x).get("alarm")) for x in told] == [
        ("cleared", None),
        ("acknowledged", 12),
    ]
    assert {x.topic for x in told} == {"acme/works-1/alarms"}
    # Known active at start (read from the store): its clear is told.
    m = Messenger(NS, clock=lambda: at(0), active_alarms=[("press-2", "link")])
    changes = Changes()
    changes.clear("press-2", "link", at(4))
    assert len(m(changes)) == 1


def test_finish_fills_in_the_ids_and_strips_the_directives() -> None:
    _, step = unit_with_step()
    event = Event.of(step.handle(StepEvent.READY, at(0)), "planner")
    (message,) = messenger()(Changes(events=[event]))
    stored = payload(message)
    assert stored["event"] is None
    published = json.loads(finish(stored, 41, None))
    assert published["event"] == 41
    assert "_mqtt" not in published
    assert published["data"] == {}


def test_a_finished_unit_state_is_marked_to_expire() -> None:
    unit, step = unit_with_step()
    step.state = StepState.DONE
    unit.handle(UnitEvent.START, at(1))
    event = Event.of(unit.handle(UnitEvent.FINISH, at(2)), "controller")
    told = messenger()(Changes(units={unit.id: unit}, events=[event]))
    state = payload(told[-1])
    assert state["state"] == "done"
    assert directives(state).expire
