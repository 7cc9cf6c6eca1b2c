"""The pure Modbus codec: known word/byte-order vectors, every refusal, round trips, planning.

Expected registers are written out literally (libmodbus vectors from protocols.md section 3.2
and hand-derived ones), never computed with the code under test.
"""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.modbus.codec import (
    Block,
    CodecError,
    DataType,
    Order,
    Point,
    Table,
    check_map,
    check_write,
    decode,
    encode,
    plan_reads,
    plan_write,
    protocol_address,
)

A, C, B, D = Order.ABCD, Order.CDAB, Order.BADC, Order.DCBA
HOLDING, INPUT, COIL, DISCRETE = Table.HOLDING, Table.INPUT, Table.COIL, Table.DISCRETE_INPUT
# 0x0102030405060708 read as a big-endian double: every byte distinct, so any mix-up shows.
DISTINCT = struct.unpack(">d", bytes.fromhex("0102030405060708"))[0]


def hr(
    name: str = "p",
    address: int = 0,
    type_: DataType = DataType.UINT16,
    order: Order = Order.ABCD,
    *,
    writable: bool = False,
    scale: float = 1.0,
    offset: float = 0.0,
    length: int = 0,
    minimum: float | None = None,
    maximum: float | None = None,
) -> Point:
    """A holding-register point with defaults for whatever a test does not care about."""
    return Point(
        name, HOLDING, address, type_, order, scale, offset, writable, length, minimum, maximum
    )


VECTORS = [
    # type, order, value, registers on the wire
    (DataType.FLOAT32, A, 123456.0, [0x47F1, 0x2000]),
    (DataType.FLOAT32, C, 123456.0, [0x2000, 0x47F1]),
    (DataType.FLOAT32, B, 123456.0, [0xF147, 0x0020]),
    (DataType.FLOAT32, D, 123456.0, [0x0020, 0xF147]),
    (DataType.INT32, A, -2, [0xFFFF, 0xFFFE]),
    (DataType.INT32, C, -2, [0xFFFE, 0xFFFF]),
    (DataType.INT32, B, -2, [0xFFFF, 0xFEFF]),
    (DataType.INT32, D, -2, [0xFEFF, 0xFFFF]),
    (DataType.INT32, A, -123456789, [0xF8A4, 0x32EB]),  # 0xF8A432EB
    (DataType.INT32, C, -123456789, [0x32EB, 0xF8A4]),
    (DataType.INT32, B, -123456789, [0xA4F8, 0xEB32]),
    (DataType.INT32, D, -123456789, [0xEB32, 0xA4F8]),
    (DataType.UINT32, A, 0x12345678, [0x1234, 0x5678]),
    (DataType.UINT32, C, 0x12345678, [0x5678, 0x1234]),
    (DataType.UINT32, B, 0x12345678, [0x3412, 0x7856]),
    (DataType.UINT32, D, 0x12345678, [0x7856, 0x3412]),
    (DataType.INT16, A, -2, [0xFFFE]),
    (DataType.INT16, C, -2, [0xFFFE]),
    (DataType.INT16, B, -2, [0xFEFF]),
    (DataType.INT16, D, -2, [0xFEFF]),
    (DataType.UINT16, A, 0x1234, [0x1234]),
    (DataType.UINT16, C, 0x1234, [0x1234]),
    (DataType.UINT16, B, 0x1234, [0x3412]),
    (DataType.UINT16, D, 0x1234, [0x3412]),
    (DataType.FLOAT64, A, 1.0, [0x3FF0, 0x0000, 0x0000, 0x0000]),  # 0x3FF0000000000000
    (DataType.FLOAT64, C, 1.0, [0x0000, 0x0000, 0x0000, 0x3FF0]),
    (DataType.FLOAT64, B, 1.0, [0xF03F, 0x0000, 0x0000, 0x0000]),
    (DataType.FLOAT64, D, 1.0, [0x0000, 0x0000, 0x0000, 0xF03F]),
    (DataType.FLOAT64, A, 123456.0, [0x40FE, 0x2400, 0x0000, 0x0000]),  # 0x40FE240000000000
    (DataType.FLOAT64, C, 123456.0, [0x0000, 0x0000, 0x2400, 0x40FE]),
    (DataType.FLOAT64, B, 123456.0, [0xFE40, 0x0024, 0x0000, 0x0000]),
    (DataType.FLOAT64, D, 123456.0, [0x0000, 0x0000, 0x0024, 0xFE40]),
    (DataType.FLOAT64, A, DISTINCT, [0x0102, 0x0304, 0x0506, 0x0708]),
    (DataType.FLOAT64, C, DISTINCT, [0x0708, 0x0506, 0x0304, 0x0102]),
    (DataType.FLOAT64, B, DISTINCT, [0x0201, 0x0403, 0x0605, 0x0807]),
    (DataType.FLOAT64, D, DISTINCT, [0x0807, 0x0605, 0x0403, 0x0201]),
]


@pytest.mark.parametrize(("type_", "order", "value", "words"), VECTORS)
def test_known_vectors_encode_and_decode(
    type_: DataType, order: Order, value: float, words: list[int]
) -> None:
    point = hr(type_=type_, order=order)
    assert encode(point, value) == words
    decoded = decode(point, words)
    assert decoded == value
    assert type(decoded) is type(value)


STRINGS = [
    # order, length, text, registers: ABCD/CDAB first char high, BADC/DCBA first char low
    (A, 1, "AB", [0x4142]),
    (C, 1, "AB", [0x4142]),
    (B, 1, "AB", [0x4241]),
    (D, 1, "AB", [0x4241]),
    (A, 2, "ABCD", [0x4142, 0x4344]),
    (C, 2, "ABCD", [0x4142, 0x4344]),
    (B, 2, "ABCD", [0x4241, 0x4443]),
    (D, 2, "ABCD", [0x4241, 0x4443]),
    (A, 3, "ABC", [0x4142, 0x4300, 0x0000]),
    (B, 3, "ABC", [0x4241, 0x0043, 0x0000]),
    (A, 2, "", [0x0000, 0x0000]),
    (A, 2, "é", [0xC3A9, 0x0000]),  # UTF-8
]


@pytest.mark.parametrize(("order", "length", "text", "words"), STRINGS)
def test_string_vectors(order: Order, length: int, text: str, words: list[int]) -> None:
    point = hr(type_=DataType.STRING, order=order, length=length)
    assert encode(point, text) == words
    assert decode(point, words) == text


@pytest.mark.parametrize(
    ("table", "value", "wire"),
    [
        (COIL, True, [True]),
        (COIL, False, [False]),
        (COIL, 1, [True]),
        (DISCRETE, 0, [False]),
        (HOLDING, True, [1]),
        (HOLDING, False, [0]),
        (INPUT, 1, [1]),
    ],
)
def test_bool_encode(table: Table, value: object, wire: list[object]) -> None:
    assert encode(Point("b", table, 0, DataType.BOOL), value) == wire


@pytest.mark.parametrize(
    ("table", "wire", "value"),
    [(COIL, [True], True), (COIL, [0], False), (HOLDING, [0], False), (HOLDING, [0xFFFF], True)],
)
def test_bool_decode_treats_any_nonzero_register_as_true(
    table: Table, wire: list[int], value: bool
) -> None:
    assert decode(Point("b", table, 0, DataType.BOOL), wire) is value


def test_scale_and_offset() -> None:
    width = hr("width", type_=DataType.INT16, scale=0.01)
    assert encode(width, 12.34) == [1234]
    assert decode(width, [1234]) == pytest.approx(12.34)
    assert isinstance(decode(width, [1234]), float)
    celsius = hr("temp", type_=DataType.UINT16, scale=0.1, offset=-40.0)
    assert encode(celsius, 21.5) == [615]
    assert decode(celsius, [615]) == pytest.approx(21.5)
    assert encode(hr(type_=DataType.INT16), 2.5) == [2]  # nearest, ties to even
    assert encode(hr(type_=DataType.INT16), 3.5) == [4]
    assert encode(hr(type_=DataType.FLOAT32, scale=2.0), 3.0) == [0x3FC0, 0x0000]  # raw 1.5


def test_decode_returns_int_only_for_unscaled_integers() -> None:
    assert type(decode(hr(type_=DataType.UINT16), [7])) is int
    assert type(decode(hr(type_=DataType.UINT16, offset=1.0), [7])) is float
    assert type(decode(hr(type_=DataType.FLOAT32), [0x3FC0, 0])) is float


@pytest.mark.parametrize(
    ("point", "value", "message"),
    [
        (hr(type_=DataType.INT16), 32768, "32768 is out of range -32768..32767"),
        (hr(type_=DataType.INT16), -32769, "-32769 is out of range -32768..32767"),
        (hr(type_=DataType.UINT16), -1, "-1 is out of range 0..65535"),
        (hr(type_=DataType.UINT16), 65536, "65536 is out of range 0..65535"),
        (hr(type_=DataType.INT32), 2**31, "2147483648 is out of range -2147483648..2147483647"),
        (hr(type_=DataType.INT32), -(2**31) - 1, "is out of range -2147483648..2147483647"),
        (hr(type_=DataType.UINT32), -1, "-1 is out of range 0..4294967295"),
        (
            hr("job_id", 2, DataType.UINT32),
            2**32,
            "point 'job_id' (holding 2, uint32): 4294967296 is out of range 0..4294967295",
        ),
        (hr(type_=DataType.INT16, scale=0.01), 400, "400 (raw 40000 at scale 0.01"),
        (hr(type_=DataType.FLOAT32), 3.5e38, "out of range for float32"),
        (hr(type_=DataType.FLOAT32), -3.5e38, "out of range for float32"),
        (hr(type_=DataType.FLOAT64, scale=1e-300), 1e300, "out of range for float64"),
        (hr(type_=DataType.FLOAT64), 10**400, "out of range for float64"),
        (hr(type_=DataType.FLOAT32), math.nan, "nan is not a finite number"),
        (hr(type_=DataType.FLOAT64), math.inf, "inf is not a finite number"),
        (hr(type_=DataType.INT16), -math.inf, "-inf is not a finite number"),
        (hr(type_=DataType.INT16), True, "expected a number, got bool True"),
        (hr(type_=DataType.FLOAT32), "1.5", "expected a number, got str '1.5'"),
        (hr(type_=DataType.INT16), None, "expected a number, got NoneType None"),
        (hr(type_=DataType.INT16, minimum=0.0), -1, "-1 is below the minimum 0.0"),
        (hr(type_=DataType.FLOAT32, maximum=10.0), 10.5, "10.5 is above the maximum 10.0"),
        (hr(type_=DataType.BOOL), 2, "expected a bool, got int 2"),
        (hr(type_=DataType.BOOL), 1.0, "expected a bool, got float 1.0"),
        (hr(type_=DataType.BOOL), "true", "expected a bool, got str 'true'"),
        (hr(type_=DataType.STRING, length=1), "ABC", "'ABC' is 3 bytes, more than the 2"),
        (hr(type_=DataType.STRING, length=1), "éé", "is 4 bytes, more than the 2"),
        (hr(type_=DataType.STRING, length=2), 12, "expected a str, got int 12"),
        (hr(type_=DataType.STRING, length=2), "A\x00B", "contains a NUL character"),
        (hr(type_=DataType.STRING), "A", "a string needs length > 0"),
        (hr(type_=DataType.UINT16, scale=0.0), 1, "scale must not be 0"),
        (hr(type_=DataType.UINT16, offset=math.nan), 1, "scale and offset must be finite"),
        (Point("c", COIL, 0, DataType.INT16), 1, "the coil table holds only bool"),
    ],
)
def test_encode_refusals_name_point_and_reason(point: Point, value: object, message: str) -> None:
    with pytest.raises(CodecError, match=r"^point '") as caught:
        encode(point, value)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("point", "words", "message"),
    [
        (hr(type_=DataType.UINT32), [1], "expected 2 registers, got 1"),
        (hr(type_=DataType.UINT16), [1, 2], "expected 1 registers, got 2"),
        (Point("c", COIL, 0, DataType.BOOL), [], "expected 1 bits, got 0"),
        (hr(type_=DataType.UINT16), [65536], "65536 is not valid in registers"),
        (hr(type_=DataType.UINT16), [-1], "-1 is not valid in registers"),
        (hr(type_=DataType.UINT16), [1.0], "1.0 is not valid in registers"),
        (Point("c", COIL, 0, DataType.BOOL), [2], "2 is not valid in bits"),
        (hr(type_=DataType.STRING, length=1), [0xFFFF], "registers do not hold UTF-8 text"),
    ],
)
def test_decode_refusals(point: Point, words: list[int], message: str) -> None:
    with pytest.raises(CodecError, match=r"^point '") as caught:
        decode(point, words)
    assert message in str(caught.value)


def test_point_str_count_and_end() -> None:
    job = hr("job_id", 2, DataType.UINT32, C)
    assert str(job) == "'job_id' (holding 2, uint32 CDAB)"
    assert str(hr("job_id", 2, DataType.UINT32)) == "'job_id' (holding 2, uint32)"
    assert (job.count, job.end) == (2, 4)
    assert hr(type_=DataType.FLOAT64).count == 4
    assert hr(type_=DataType.STRING, length=5).count == 5
    assert Point("b", COIL, 9, DataType.BOOL).count == 1
    assert hr(type_=DataType.BOOL).count == 1


def test_table_properties() -> None:
    assert [t for t in Table if t.bits] == [COIL, DISCRETE]
    assert [t for t in Table if t.writable] == [COIL, HOLDING]


ORDERS = st.sampled_from(Order)
INT_STRATEGIES = {
    DataType.INT16: st.integers(-(2**15), 2**15 - 1),
    DataType.UINT16: st.integers(0, 2**16 - 1),
    DataType.INT32: st.integers(-(2**31), 2**31 - 1),
    DataType.UINT32: st.integers(0, 2**32 - 1),
}


@pytest.mark.parametrize("type_", list(INT_STRATEGIES))
@given(data=st.data(), order=ORDERS)
def test_integer_round_trip(type_: DataType, data: st.DataObject, order: Order) -> None:
    value = data.draw(INT_STRATEGIES[type_])
    point = hr(type_=type_, order=order)
    words = encode(point, value)
    assert all(isinstance(w, int) and 0 <= w <= 0xFFFF for w in words)
    assert decode(point, words) == value


@given(value=st.floats(width=32, allow_nan=False, allow_infinity=False), order=ORDERS)
def test_float32_round_trip(value: float, order: Order) -> None:
    point = hr(type_=DataType.FLOAT32, order=order)
    assert decode(point, encode(point, value)) == value


@given(value=st.floats(allow_nan=False, allow_infinity=False), order=ORDERS)
def test_float64_round_trip(value: float, order: Order) -> None:
    point = hr(type_=DataType.FLOAT64, order=order)
    decoded = decode(point, encode(point, value))
    assert decoded == value
    assert math.copysign(1.0, decoded) == math.copysign(1.0, value)  # -0.0 survives


@given(
    text=st.text(
        st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=8
    ).filter(lambda s: len(s.encode()) <= 8),
    order=ORDERS,
)
def test_string_round_trip(text: str, order: Order) -> None:
    point = hr(type_=DataType.STRING, order=order, length=4)
    assert decode(point, encode(point, text)) == text


@given(value=st.booleans(), table=st.sampled_from(Table))
def test_bool_round_trip(value: bool, table: Table) -> None:
    point = Point("b", table, 0, DataType.BOOL)
    assert decode(point, encode(point, value)) is value


@given(raw=st.integers(-32768, 32767))
def test_scaled_round_trip_recovers_the_raw_value(raw: int) -> None:
    point = hr(type_=DataType.INT16, scale=0.01, offset=5.0)
    assert encode(point, decode(point, [raw & 0xFFFF])) == [raw & 0xFFFF]


@pytest.mark.parametrize(
    ("address", "base", "expected"),
    [(0, 0, 0), (65535, 0, 65535), (1, 1, 0), (40, 1, 39), (65536, 1, 65535)],
)
def test_protocol_address(address: int, base: int, expected: int) -> None:
    assert protocol_address(address, base) == expected


@pytest.mark.parametrize(
    ("address", "base", "message"),
    [
        (0, 1, "address 0 does not exist when addresses are one-based"),
        (-1, 0, "address -1 (base 0) is outside 0..65535"),
        (65536, 0, "address 65536 (base 0) is outside 0..65535"),
        (65537, 1, "address 65537 (base 1) is outside 0..65535"),
        (5, 2, "address base must be 0 or 1, not 2"),
    ],
)
def test_protocol_address_refusals(address: int, base: int, message: str) -> None:
    with pytest.raises(CodecError, match=message.replace("(", r"\(").replace(")", r"\)")):
        protocol_address(address, base)


def test_check_write_refuses_read_only_and_undeclared_points() -> None:
    with pytest.raises(CodecError, match=r"'s' \(input 0, uint16\): the input table is read-only"):
        check_write(Point("s", INPUT, 0, DataType.UINT16, writable=True), 1)
    with pytest.raises(CodecError, match="the discrete_input table is read-only"):
        check_write(Point("d", DISCRETE, 0, DataType.BOOL, writable=True), True)
    with pytest.raises(CodecError, match=r"'h' \(holding 0, uint16\): is not declared writable"):
        check_write(hr("h"), 1)
    assert check_write(hr("h", writable=True), 7) == [7]
    assert check_write(Point("c", COIL, 3, DataType.BOOL, writable=True), True) == [True]
    with pytest.raises(CodecError, match="out of range"):
        check_write(hr("h", writable=True), -1)


def spans(blocks: list[Block]) -> list[tuple[Table, int, int, list[str]]]:
    return [(b.table, b.start, b.count, [p.name for p in b.points]) for b in blocks]


def test_plan_reads_merges_touching_and_overlapping_points() -> None:
    points = [
        hr("c", 3, DataType.FLOAT32),
        hr("a", 0, DataType.UINT32),
        hr("b", 2),
        hr("inner", 3, DataType.UINT16),  # overlaps c
        hr("far", 10),
    ]
    assert spans(plan_reads(points)) == [
        (HOLDING, 0, 5, ["a", "b", "inner", "c"]),
        (HOLDING, 10, 1, ["far"]),
    ]


def test_plan_reads_spans_gaps_only_when_allowed() -> None:
    points = [hr("a", 0), hr("b", 4), hr("c", 9)]
    assert len(plan_reads(points)) == 3
    assert spans(plan_reads(points, span_gaps=3)) == [
        (HOLDING, 0, 5, ["a", "b"]),
        (HOLDING, 9, 1, ["c"]),
    ]
    assert spans(plan_reads(points, span_gaps=4)) == [(HOLDING, 0, 10, ["a", "b", "c"])]


def test_plan_reads_splits_at_the_maximum() -> None:
    points = [hr(f"r{i}", 2 * i, DataType.UINT32) for i in range(100)]  # 200 registers
    blocks = plan_reads(points)
    assert [(b.start, b.count) for b in blocks] == [(0, 124), (124, 76)]  # never split a point
    assert sum(len(b.points) for b in blocks) == 100
    bits = [Point(f"b{i}", COIL, i, DataType.BOOL) for i in range(4500)]
    assert [(b.start, b.count) for b in plan_reads(bits)] == [(0, 2000), (2000, 2000), (4000, 500)]
    assert [b.count for b in plan_reads(points, max_registers=10)] == [10] * 20


def test_plan_reads_keeps_tables_apart_in_a_fixed_order() -> None:
    points = [
        Point("i", INPUT, 0, DataType.UINT16),
        hr("h", 1),
        Point("d", DISCRETE, 0, DataType.BOOL),
        Point("c", COIL, 1, DataType.BOOL),
        Point("c0", COIL, 0, DataType.BOOL),
        hr("h0", 0),
    ]
    assert spans(plan_reads(points)) == [
        (COIL, 0, 2, ["c0", "c"]),
        (DISCRETE, 0, 1, ["d"]),
        (HOLDING, 0, 2, ["h0", "h"]),
        (INPUT, 0, 1, ["i"]),
    ]
    assert plan_reads([]) == []


def test_plan_reads_refusals() -> None:
    with pytest.raises(CodecError, match="needs 4, more than the 3 one read may take"):
        plan_reads([hr("big", 0, DataType.FLOAT64)], max_registers=3)
    with pytest.raises(CodecError, match=r"lies outside 0\.\.65535"):
        plan_reads([hr("edge", 65535, DataType.UINT32)])
    with pytest.raises(CodecError, match="span_gaps"):
        plan_reads([], span_gaps=-1)


def test_block_decode() -> None:
    points = [
        hr("job_id", 0, DataType.UINT32),
        hr("speed", 2, DataType.FLOAT32),
        hr("name", 5, DataType.STRING, length=1),
    ]
    (block,) = plan_reads(points, span_gaps=1)
    assert block.decode([0, 7, 0x47F1, 0x2000, 0xDEAD, 0x4142]) == {
        "job_id": 7,
        "speed": 123456.0,
        "name": "AB",
    }
    with pytest.raises(CodecError, match=r"read of holding 0\.\.5: expected 6 values, got 8"):
        block.decode([0] * 8)
    coils = Block(
        COIL, 4, 2, (Point("a", COIL, 4, DataType.BOOL), Point("b", COIL, 5, DataType.BOOL))
    )
    assert coils.decode([False, True]) == {"a": False, "b": True}


RECIPE = [
    hr("recipe.length", 4, DataType.FLOAT32, writable=True),
    hr("recipe.width", 6, DataType.UINT16, writable=True, scale=0.1),
    hr("job_id", 7, DataType.UINT32, C, writable=True),
    hr("command", 9, writable=True),
]


def test_plan_write_builds_one_contiguous_write() -> None:
    values = dict(zip(reversed(RECIPE), [1, 0x12345678, 25.0, 123456.0], strict=True))
    assert plan_write(values) == (4, [0x47F1, 0x2000, 250, 0x5678, 0x1234, 1])


def test_plan_write_names_the_gap() -> None:
    values = {RECIPE[1]: 1.0, RECIPE[3]: 1}
    with pytest.raises(CodecError) as caught:
        plan_write(values)
    message = "no writable point covers holding 7..8 between 'recipe.width' and 'command'"
    assert str(caught.value) == message
    with pytest.raises(CodecError, match=r"covers holding 7 between 'recipe\.width' and 'job_id'"):
        plan_write({RECIPE[1]: 1.0, hr("job_id", 8, DataType.UINT32, writable=True): 1})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({}, "nothing to write"),
        ({hr("ro", 0): 1}, r"'ro' \(holding 0, uint16\): is not declared writable"),
        ({Point("in", INPUT, 0, DataType.UINT16): 1}, "holding registers, not the input"),
        ({Point("c", COIL, 0, DataType.BOOL, writable=True): True}, "not the coil"),
        (
            {hr("a", 0, DataType.UINT32, writable=True): 1, hr("b", 1, writable=True): 1},
            r"'b' \(holding 1, uint16\): overlaps 'a' \(holding 0, uint32\)",
        ),
        (
            {hr(f"r{i}", i, writable=True): i for i in range(124)},
            "write of holding 0..123 is 124 registers, over 123",
        ),
        ({hr("w", 0, DataType.INT16, writable=True): 40000}, "out of range -32768..32767"),
    ],
)
def test_plan_write_refusals(values: dict[Point, object], message: str) -> None:
    with pytest.raises(CodecError, match=message):
        plan_write(values)


def test_plan_write_limit_is_adjustable() -> None:
    values = {hr(f"r{i}", 10 + i, writable=True): i for i in range(5)}
    assert plan_write(values, max_registers=5) == (10, [0, 1, 2, 3, 4])
    with pytest.raises(CodecError, match="over 4"):
        plan_write(values, max_registers=4)


def test_check_map_accepts_a_good_map() -> None:
    points = [
        *RECIPE,
        Point("ok", COIL, 0, DataType.BOOL, writable=True),
        hr("s", 20, DataType.STRING, length=4),
    ]
    assert check_map(points) == []


@pytest.mark.parametrize(
    ("points", "problems"),
    [
        (
            [hr("x", 0), hr("x", 1)],
            ["point name 'x' is used twice: 'x' (holding 0, uint16), 'x' (holding 1, uint16)"],
        ),
        (
            [
                hr("a", 0, DataType.UINT32),
                hr("b", 1),
                hr("c", 2),
                Point("i", INPUT, 1, DataType.UINT16),
            ],
            ["point 'a' (holding 0, uint32) overlaps 'b' (holding 1, uint16)"],
        ),
        (
            [hr("big", 0, DataType.FLOAT64), hr("in1", 1), hr("in2", 3)],
            [
                "point 'big' (holding 0, float64) overlaps 'in1' (holding 1, uint16)",
                "point 'big' (holding 0, float64) overlaps 'in2' (holding 3, uint16)",
            ],
        ),
        (
            [hr("edge", 65535, DataType.UINT32), hr("neg", -1)],
            [
                "point 'edge' (holding 65535, uint32): lies outside 0..65535 (ends at 65536)",
                "point 'neg' (holding -1, uint16): lies outside 0..65535 (ends at -1)",
            ],
        ),
        (
            [Point("c", COIL, 0, DataType.UINT16), Point("d", DISCRETE, 0, DataType.FLOAT32)],
            [
                "point 'c' (coil 0, uint16): the coil table holds only bool",
                "point 'd' (discrete_input 0, float32): the discrete_input table holds only bool",
            ],
        ),
        (
            [Point("i", INPUT, 0, DataType.UINT16, writable=True)],
            ["point 'i' (input 0, uint16): declared writable, but the input table is read-only"],
        ),
        (
            [hr("s", 0, DataType.STRING), hr("n", 5, length=2)],
            [
                "point 's' (holding 0, string): "
                "a string needs length > 0 (registers of 2 bytes each)",
                "point 'n' (holding 5, uint16): length 2 applies only to strings",
            ],
        ),
        ([hr("z", 0, scale=0.0)], ["point 'z' (holding 0, uint16): scale must not be 0"]),
        (
            [hr("m", 0, minimum=5.0, maximum=1.0)],
            ["point 'm' (holding 0, uint16): minimum 5.0 is above maximum 1.0"],
        ),
        (
            [hr("b", 0, DataType.BOOL, scale=2.0)],
            [
                "point 'b' (holding 0, bool): "
                "scale, offset, minimum and maximum do not apply to bool"
            ],
        ),
    ],
)
def test_check_map_problems(points: list[Point], problems: list[str]) -> None:
    assert check_map(points) == problems


def test_a_string_that_is_not_valid_text_is_refused_by_name() -> None:
    point = Point("recipe.label", Table.HOLDING, 8, DataType.STRING, length=4)
    with pytest.raises(CodecError, match=r"point 'recipe.label'.*not valid text"):
        encode(point, "\ud800")
