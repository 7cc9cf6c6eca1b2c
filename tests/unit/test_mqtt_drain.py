"""The publishing order (mes.mqtt.drain), with time passed in: per-topic order, live before
backlog, backlog at its rate, refused messages retried then set aside."""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mes.mqtt.drain import Drain, Row, TokenBucket, Verdict


def row(row_id: int, topic: str) -> Row:
    return Row(row_id, topic, f"{row_id}".encode())


def rows(*spec: tuple[int, str]) -> list[Row]:
    return [row(i, t) for i, t in spec]


def ids(sent: Iterable[Row]) -> list[int]:
    return [r.id for r in sent]


def drain(backlog: Iterable[tuple[int, str]] = (), **kwargs: float) -> Drain:
    backlog = list(backlog)
    tops: dict[str, int] = {}
    for i, t in backlog:
        tops[t] = max(tops.get(t, 0), i)
    d = Drain(
        watermark=max((i for i, _ in backlog), default=0),
        backlog=tops,
        now=0.0,
        **kwargs,  # type: ignore[arg-type]
    )
    d.offer(rows(*backlog))
    return d


def test_a_topic_sends_one_message_at_a_time_in_id_order() -> None:
    d = drain()
    d.offer(rows((1, "a"), (2, "b"), (3, "a"), (4, "a")))
    assert ids(d.due(0.0)) == [1, 2]  # 3 waits for 1
    assert ids(d.due(0.0)) == []
    d.done([1])
    assert ids(d.due(0.0)) == [3]
    d.done([2, 3])
    assert ids(d.due(0.0)) == [4]
    d.done([4])
    assert d.idle


def test_the_window_bounds_messages_in_flight() -> None:
    d = drain(window=3)
    d.offer(rows(*((i, f"t{i}") for i in range(1, 11))))
    assert ids(d.due(0.0)) == [1, 2, 3]
    d.done([2])
    assert ids(d.due(0.0)) == [4]


def test_live_topics_go_first_and_backlog_at_its_rate() -> None:
    backlog = [(i, f"old{i % 5}") for i in range(1, 101)]
    d = drain(backlog, rate=10.0, window=100)
    d.offer(rows((101, "fresh"), (102, "old1"), (103, "other")))
    first = ids(d.due(0.0))
    # The live topics without backlog at once; a second's worth of backlog (one a topic).
    assert first[:2] == [101, 103]
    assert first[2:] == [1, 2, 3, 4, 5]
    assert 102 not in first  # behind old1's backlog
    d.done(first)
    # The rest of the second's worth (ten tokens), then nothing until time passes.
    assert ids(d.due(0.0)) == [6, 7, 8, 9, 10]
    d.done([6, 7, 8, 9, 10])
    assert ids(d.due(0.0)) == []
    assert d.wake_at(0.0) == pytest.approx(0.1)
    assert ids(d.due(0.1)) == [11]


def test_the_backlog_rate_is_bounded_over_time() -> None:
    backlog = [(i, f"t{i % 50}") for i in range(1, 2001)]
    d = drain(backlog, rate=100.0, window=1000)
    sent, now = 0, 0.0
    while now < 5.0:
        out = d.due(now)
        sent += len(out)
        d.done(ids(out))
        now += 0.01
    # 5 s at 100/s, plus the one second's worth the bucket starts with.
    assert 500 <= sent <= 600


def test_a_live_row_waits_for_its_topics_backlog_even_before_it_is_read() -> None:
    # Backlog snapshot: topic a up to #3; only #1 is read so far.
    d = Drain(watermark=3, backlog={"a": 3, "b": 2}, now=0.0, rate=1000.0)
    d.offer(rows((1, "a"), (10, "a")))
    assert ids(d.due(0.0)) == [1]
    d.done([1])
    assert ids(d.due(0.0)) == []  # #3 of a not read yet: #10 must not overtake it
    d.offer(rows((2, "b"), (3, "a")))
    assert ids(d.due(0.0)) == [2, 3]
    d.done([3])
    assert ids(d.due(0.0)) == [10]


def test_a_backlog_row_gone_meanwhile_holds_its_topic_only_until_the_backlog_is_read() -> None:
    d = Drain(watermark=5, backlog={"a": 5}, now=0.0)
    d.offer(rows((7, "a")))
    assert ids(d.due(0.0)) == []
    d.backlog_read()
    assert ids(d.due(0.0)) == [7]


def test_a_row_committed_late_takes_its_place_in_its_topic() -> None:
    d = drain()
    d.offer(rows((5, "a"), (9, "a")))
    d.offer(rows((7, "a")))
    sent = []
    while not d.idle:
        out = d.due(0.0)
        sent += ids(out)
        d.done(ids(out))
    assert sent == [5, 7, 9]


def test_a_refused_message_is_retried_later_then_set_aside_and_its_topic_goes_on() -> None:
    d = drain(max_attempts=3, retry_first_s=1.0)
    d.offer(rows((1, "a"), (2, "a"), (3, "b")))
    assert ids(d.due(0.0)) == [1, 3]
    d.done([3])
    assert d.refused(1, 0.0) is Verdict.RETRY
    assert ids(d.due(0.5)) == []  # waits; 2 stays behind it
    assert ids(d.due(1.0)) == [1]
    assert d.attempts(1) == 1
    assert d.refused(1, 1.0) is Verdict.RETRY
    assert ids(d.due(2.5)) == []  # the delay doubled
    assert ids(d.due(3.0)) == [1]
    assert d.refused(1, 3.0) is Verdict.DEAD
    assert ids(d.due(3.0)) == [2]


def test_token_bucket() -> None:
    bucket = TokenBucket(rate=2.0, burst=2.0, now=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [True, True, False]
    assert bucket.ready_at(0.0) == pytest.approx(0.5)
    assert bucket.take(0.5)


@settings(max_examples=200, deadline=None)
@given(
    topics=st.lists(st.sampled_from("abcde"), min_size=1, max_size=60),
    watermark=st.integers(0, 60),
    refusals=st.sets(st.integers(1, 60), max_size=8),
    window=st.integers(1, 8),
)
def test_every_row_leaves_once_and_each_topic_in_order(
    topics: list[str], watermark: int, refusals: set[int], window: int
) -> None:
    every = list(enumerate(topics, start=1))
    backlog = [(i, t) for i, t in every if i <= watermark]
    tops: dict[str, int] = {}
    for i, t in backlog:
        tops[t] = max(tops.get(t, 0), i)
    d = Drain(
        watermark=max((i for i, _ in backlog), default=0),
        backlog=tops,
        now=0.0,
        rate=5.0,
        window=window,
        max_attempts=2,
    )
    # Rows arrive in two reads, the live ones first (as the publisher reads them).
    d.offer(rows(*((i, t) for i, t in every if i > watermark)))
    d.offer(rows(*backlog))
    d.backlog_read()
    out: list[int] = []
    dead: list[int] = []
    now = 0.0
    for _ in range(10_000):
        if d.idle:
            break
        for r in d.due(now):
            if r.id in refusals:
                if d.refused(r.id, now) is Verdict.DEAD:
                    dead.append(r.id)
            else:
                d.done([r.id])
                out.append(r.id)
        now += 0.25
    assert d.idle
    assert sorted(out + dead) == [i for i, _ in every]
    assert set(dead) == refusals & {i for i, _ in every}
    for topic in set(topics):
        sent = [i for i in out if topics[i - 1] == topic]
        assert sent == sorted(sent)
    # A live topic never waits for the backlog of others: every live row of a topic
    # without backlog went out before any backlog row that needed a token.
    fresh = [i for i, t in every if i > watermark and t not in tops and i not in refusals]
    if fresh and backlog:
        assert out.index(fresh[0]) <= min(window, len(out)) + 5
