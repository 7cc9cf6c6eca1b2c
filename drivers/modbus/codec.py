"""Pure Modbus codec: points to registers and back, read plans and one-shot write plans.

Theory of operation: a :class:`Point` names one value in one of the four Modbus tables at a
0-based protocol address, with a data type, a word/byte order and a linear scale
(engineering = raw * scale + offset). :func:`encode` turns an engineering value into what the
wire carries (registers, or bits for coils) and :func:`decode` turns it back. A number is
packed big-endian and split into registers most significant first (ABCD); CDAB reverses the
registers, BADC swaps the two bytes inside each register, DCBA does both. Strings never
reverse registers: BADC/DCBA only swap each byte pair. :func:`plan_reads` packs points into
the fewest read requests, :func:`plan_write` builds the one FC16 write that hands a PLC a
whole job at once, :func:`check_map` lists what is wrong with a register map. Every refusal
is a :class:`CodecError` naming the point and the reason. No I/O here.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from itertools import pairwise

FLOAT32_MAX = 3.4028234663852886e38  # larger values are refused, never rounded to infinity
ADDRESS_SPACE = 65536  # protocol addresses run 0..65535 in every table


class CodecError(ValueError):
    """A value, point or register map the codec refuses; the message names point and reason."""


class Table(StrEnum):
    """The four Modbus data tables."""

    COIL = "coil"
    DISCRETE_INPUT = "discrete_input"
    INPUT = "input"
    HOLDING = "holding"

    @property
    def bits(self) -> bool:
        """True for the single-bit tables (coils and discrete inputs)."""
        return self in (Table.COIL, Table.DISCRETE_INPUT)

    @property
    def writable(self) -> bool:
        """True for the tables a client may write (coils and holding registers)."""
        return self in (Table.COIL, Table.HOLDING)


class DataType(StrEnum):
    """How the registers (or the bit) of a point are read as a value."""

    BOOL = "bool"
    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    FLOAT32 = "float32"
    FLOAT64 = "float64"
    STRING = "string"


class Order(StrEnum):
    """Word and byte order of a multi-byte value, named after 0xAABBCCDD on the wire."""

    ABCD = "ABCD"  # big-endian words and bytes: the Modbus standard
    CDAB = "CDAB"  # least significant register first ("first word low")
    BADC = "BADC"  # bytes swapped inside each register
    DCBA = "DCBA"  # fully little-endian


_TABLE_ORDER = (Table.COIL, Table.DISCRETE_INPUT, Table.HOLDING, Table.INPUT)
_STRUCT = {
    DataType.INT16: ">h",
    DataType.UINT16: ">H",
    DataType.INT32: ">i",
    DataType.UINT32: ">I",
    DataType.FLOAT32: ">f",
    DataType.FLOAT64: ">d",
}
_INT_RANGE = {
    DataType.INT16: (-(2**15), 2**15 - 1),
    DataType.UINT16: (0, 2**16 - 1),
    DataType.INT32: (-(2**31), 2**31 - 1),
    DataType.UINT32: (0, 2**32 - 1),
}


@dataclass(frozen=True, slots=True)
class Point:
    """One named value in a Modbus table.

    Attributes:
        address: 0-based protocol address of its first register (or bit).
        scale: Engineering value = raw * scale + offset.
        writable: Declared access "rw"; :func:`check_write` refuses the others.
        length: Registers of a STRING (2 bytes each); 0 for every other type.
        minimum: Lowest engineering value :func:`encode` accepts (``maximum`` the highest).
    """

    name: str
    table: Table
    address: int
    type: DataType
    order: Order = Order.ABCD
    scale: float = 1.0
    offset: float = 0.0
    writable: bool = False
    length: int = 0
    minimum: float | None = None
    maximum: float | None = None

    @property
    def count(self) -> int:
        """Registers (bits in a bit table) the point occupies; a bool takes one."""
        if self.type == DataType.STRING:
            return self.length
        return struct.calcsize(_STRUCT[self.type]) // 2 if self.type in _STRUCT else 1

    @property
    def end(self) -> int:
        """First address past the point."""
        return self.address + self.count

    def __str__(self) -> str:
        order = "" if self.order == Order.ABCD or self.type == DataType.BOOL else f" {self.order}"
        return f"'{self.name}' ({self.table} {self.address}, {self.type}{order})"


def _fail(point: Point, reason: str) -> CodecError:
    return CodecError(f"point {point}: {reason}")


def _shape_problems(point: Point) -> list[str]:
    """What makes a point impossible to encode or decode at all."""
    problems = []
    if point.table.bits and point.type != DataType.BOOL:
        problems.append(f"the {point.table} table holds only bool")
    if point.type == DataType.STRING and point.length <= 0:
        problems.append("a string needs length > 0 (registers of 2 bytes each)")
    if point.type != DataType.STRING and point.length != 0:
        problems.append(f"length {point.length} applies only to strings")
    if point.scale == 0:
        problems.append("scale must not be 0")
    if not (math.isfinite(point.scale) and math.isfinite(point.offset)):
        problems.append("scale and offset must be finite")
    return problems


def _check_shape(point: Point) -> None:
    if problems := _shape_problems(point):
        raise _fail(point, problems[0])


def _arrange(words: list[int], order: Order, *, reverse: bool = True) -> list[int]:
    """Reorder big-endian registers for ``order``; its own inverse, so decode uses it too."""
    if reverse and order in (Order.CDAB, Order.DCBA):
        words = words[::-1]
    if order in (Order.BADC, Order.DCBA):
        words = [((word & 0xFF) << 8) | (word >> 8) for word in words]
    return words


def _to_words(data: bytes) -> list[int]:
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]


def _to_bytes(words: Sequence[int]) -> bytes:
    return b"".join(word.to_bytes(2, "big") for word in words)


def protocol_address(address: int, base: int) -> int:
    """Translate a configured address into a 0-based protocol address (0..65535).

    Args:
        address: The address as written in the config.
        base: 0 for protocol addresses, 1 if one-based as in a PLC manual (1 is address 0).

    Raises:
        CodecError: base is not 0 or 1, or the result falls outside 0..65535.
    """
    if base not in (0, 1):
        raise CodecError(f"address base must be 0 or 1, not {base}")
    if base == 1 and address == 0:
        raise CodecError("address 0 does not exist when addresses are one-based (1 is the first)")
    result = address - base
    if not 0 <= result < ADDRESS_SPACE:
        raise CodecError(f"address {address} (base {base}) is outside 0..{ADDRESS_SPACE - 1}")
    return result


def _to_raw(point: Point, value: object) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(point, f"expected a number, got {type(value).__name__} {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise _fail(point, f"{value} is not a finite number")
    if point.minimum is not None and value < point.minimum:
        raise _fail(point, f"{value} is below the minimum {point.minimum}")
    if point.maximum is not None and value > point.maximum:
        raise _fail(point, f"{value} is above the maximum {point.maximum}")
    scaled = point.scale != 1 or point.offset != 0
    try:
        raw: int | float = (value - point.offset) / point.scale if scaled else value
        # Recipes are often scaled (12.34 mm at scale 0.01 is 1234): round to nearest, ties
        # to even. Unscaled ints stay ints, so large values stay exact.
        raw = round(raw) if point.type in _INT_RANGE else float(raw)
    except (OverflowError, ValueError):
        raise _fail(point, f"{value} is out of range for {point.type}") from None
    what = f"{value} (raw {raw} at scale {point.scale}, offset {point.offset})" if scaled else value
    if point.type in _INT_RANGE:
        low, high = _INT_RANGE[point.type]
        if not low <= raw <= high:
            raise _fail(point, f"{what} is out of range {low}..{high}")
    elif not math.isfinite(raw) or (point.type == DataType.FLOAT32 and abs(raw) > FLOAT32_MAX):
        raise _fail(point, f"{what} is out of range for {point.type}")
    return raw


def _encode_string(point: Point, value: object) -> list[int]:
    if not isinstance(value, str):
        raise _fail(point, f"expected a str, got {type(value).__name__} {value!r}")
    if "\x00" in value:
        raise _fail(point, f"{value!r} contains a NUL character")
    try:
        data = value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _fail(point, f"{value!r} is not valid text ({exc.reason})") from exc
    room = 2 * point.length
    if len(data) > room:
        raise _fail(point, f"{value!r} is {len(data)} bytes, more than the {room} it can hold")
    return _arrange(_to_words(data.ljust(room, b"\x00")), point.order, reverse=False)


def encode(point: Point, value: object) -> list[int] | list[bool]:
    """Turn an engineering value into what the wire carries for ``point``.

    Integer types round the scaled value to the nearest integer (ties to even). Minimum and
    maximum are checked on the engineering value, the type's range on the raw value.

    Args:
        point: The point; ``writable`` is not checked here (see :func:`check_write`).
        value: bool (or 0/1) for BOOL, int or float for numbers, str for STRING.

    Returns:
        ``[bool]`` for a coil, else registers 0..65535.

    Raises:
        CodecError: wrong value type, out of range or limits, too long, or a malformed point.
    """
    _check_shape(point)
    if point.type == DataType.BOOL:
        if not (isinstance(value, int) and value in (0, 1)):
            raise _fail(point, f"expected a bool, got {type(value).__name__} {value!r}")
        return [bool(value)] if point.table.bits else [int(value)]
    if point.type == DataType.STRING:
        return _encode_string(point, value)
    return _arrange(_to_words(struct.pack(_STRUCT[point.type], _to_raw(point, value))), point.order)


def decode(point: Point, words: Sequence[int] | Sequence[bool]) -> bool | int | float | str:
    """Turn what the wire carried for ``point`` into its engineering value.

    A bool held in a register is True when the register is non-zero (some PLCs write 0xFFFF).
    Numbers come back as ``int`` for an unscaled integer type, else as ``float``; strings lose
    their trailing NULs.

    Args:
        point: The point read.
        words: Exactly ``point.count`` registers (0..65535) or bits.

    Raises:
        CodecError: wrong count, a value out of range, text not UTF-8, or a malformed point.
    """
    _check_shape(point)
    unit = "bits" if point.table.bits else "registers"
    if len(words) != point.count:
        raise _fail(point, f"expected {point.count} {unit}, got {len(words)}")
    valid = (0, 1) if point.table.bits else range(0x10000)
    if bad := [word for word in words if not isinstance(word, int) or word not in valid]:
        raise _fail(point, f"{bad[0]!r} is not valid in {unit}")
    if point.type == DataType.BOOL:
        return bool(words[0])
    if point.type == DataType.STRING:
        data = _to_bytes(_arrange(list(words), point.order, reverse=False)).rstrip(b"\x00")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _fail(point, f"registers do not hold UTF-8 text ({exc.reason})") from None
    data = _to_bytes(_arrange(list(words), point.order))
    raw: int | float = struct.unpack(_STRUCT[point.type], data)[0]
    if point.scale == 1 and point.offset == 0:
        return raw
    return float(raw * point.scale + point.offset)


def check_write(point: Point, value: object) -> list[int] | list[bool]:
    """Encode ``value`` for a write, refusing points that may not be written.

    Raises:
        CodecError: a read-only table, a point not declared writable, or a refused value.
    """
    if not point.table.writable:
        raise _fail(point, f"the {point.table} table is read-only")
    if not point.writable:
        raise _fail(point, "is not declared writable")
    return encode(point, value)


@dataclass(frozen=True, slots=True)
class Block:
    """One read request: ``count`` registers (or bits) of ``table`` from ``start``."""

    table: Table
    start: int
    count: int
    points: tuple[Point, ...]

    def decode(self, values: Sequence[int] | Sequence[bool]) -> dict[str, bool | int | float | str]:
        """Decode every point from exactly ``count`` values (cut pymodbus's bit padding first).

        Raises:
            CodecError: wrong count, or :func:`decode` refuses a point.
        """
        if len(values) != self.count:
            where = f"{self.table} {self.start}..{self.start + self.count - 1}"
            raise CodecError(f"read of {where}: expected {self.count} values, got {len(values)}")
        at = self.start
        return {p.name: decode(p, values[p.address - at : p.end - at]) for p in self.points}


def plan_reads(
    points: Iterable[Point], *, max_registers: int = 125, max_bits: int = 2000, span_gaps: int = 0
) -> list[Block]:
    """Group points into the fewest read requests.

    Points of one table, sorted by address, share a request while they touch, overlap or lie
    within ``span_gaps`` unmapped registers (bits) of each other and the request stays within
    its maximum. Blocks come by table (coil, discrete_input, holding, input), then address.

    Args:
        points: The points to read.
        max_registers: Most registers one request may read (FC3/FC4 allow 125).
        max_bits: Most bits one request may read (FC1/FC2 allow 2000).
        span_gaps: Unmapped registers (bits) a request may read through to join two points.

    Raises:
        CodecError: bad limits, or a malformed point, out of the address space or too large.
    """
    if max_registers < 1 or max_bits < 1 or span_gaps < 0:
        raise CodecError("max_registers and max_bits must be >= 1 and span_gaps >= 0")
    by_table: dict[Table, list[Point]] = {table: [] for table in _TABLE_ORDER}
    for point in points:
        _check_shape(point)
        if point.address < 0 or point.end > ADDRESS_SPACE:
            raise _fail(point, f"lies outside 0..{ADDRESS_SPACE - 1}")
        by_table[point.table].append(point)
    blocks: list[Block] = []
    for table, members in by_table.items():
        limit = max_bits if table.bits else max_registers
        group: list[Point] = []
        start = end = 0
        for point in sorted(members, key=lambda p: (p.address, p.end, p.name)):
            if point.count > limit:
                raise _fail(point, f"needs {point.count}, more than the {limit} one read may take")
            if group and point.address - end <= span_gaps and max(end, point.end) - start <= limit:
                group.append(point)
                end = max(end, point.end)
                continue
            if group:
                blocks.append(Block(table, start, end - start, tuple(group)))
            group, start, end = [point], point.address, point.end
        if group:
            blocks.append(Block(table, start, end - start, tuple(group)))
    return blocks


def plan_write(
    values: Mapping[Point, object], *, max_registers: int = 123
) -> tuple[int, list[int]]:
    """Build one FC16 write that sets every given point at once.

    Args:
        values: Engineering value per point; the points must be writable holding registers
            that together cover one contiguous range, without gap or overlap.
        max_registers: Most registers one write may carry (FC16 allows 123).

    Returns:
        The start address and the registers to write from it.

    Raises:
        CodecError: nothing to write, a point not holding or not writable, a gap or overlap
            (named), too many registers, or a value :func:`encode` refuses.
    """
    if not values:
        raise CodecError("nothing to write")
    ordered = sorted(values, key=lambda p: (p.address, p.end, p.name))
    for point in ordered:
        if point.table != Table.HOLDING:
            raise _fail(point, f"one FC16 write covers holding registers, not the {point.table}")
    for before, after in pairwise(ordered):
        if after.address < before.end:
            raise _fail(after, f"overlaps {before}")
        if after.address > before.end:
            first, last = before.end, after.address - 1
            gap = f"{first}" if first == last else f"{first}..{last}"
            raise CodecError(
                f"no writable point covers holding {gap} between '{before.name}' and '{after.name}'"
            )
    start, end = ordered[0].address, ordered[-1].end
    if end - start > max_registers:
        where = f"holding {start}..{end - 1}"
        raise CodecError(f"write of {where} is {end - start} registers, over {max_registers}")
    registers: list[int] = []
    for point in ordered:
        registers.extend(check_write(point, values[point]))
    return start, registers


def check_map(points: Iterable[Point]) -> list[str]:
    """List what is wrong with a register map, one plain sentence per problem.

    Checks: duplicate names, overlapping points in one table, addresses outside 0..65535, a
    type its table cannot hold, writable points in read-only tables, string lengths, a zero
    or non-finite scale, scale/offset/limits on bool or string points, minimum above maximum.

    Returns:
        The problems, in map order then table order; empty when the map is fine.
    """
    listed = list(points)
    problems: list[str] = []
    seen: dict[str, Point] = {}
    for point in listed:
        if point.name in seen:
            problems.append(f"point name '{point.name}' is used twice: {seen[point.name]}, {point}")
        seen.setdefault(point.name, point)
        reasons = _shape_problems(point)
        if point.address < 0 or point.end > ADDRESS_SPACE:
            reasons.append(f"lies outside 0..{ADDRESS_SPACE - 1} (ends at {point.end - 1})")
        if point.writable and not point.table.writable:
            reasons.append(f"declared writable, but the {point.table} table is read-only")
        limited = point.minimum is not None or point.maximum is not None
        if point.type not in _STRUCT and (point.scale != 1 or point.offset != 0 or limited):
            reasons.append(f"scale, offset, minimum and maximum do not apply to {point.type}")
        low, high = point.minimum, point.maximum
        if low is not None and high is not None and low > high:
            reasons.append(f"minimum {low} is above maximum {high}")
        problems.extend(f"point {point}: {reason}" for reason in reasons)
    for table in _TABLE_ORDER:
        reach: Point | None = None  # the point reaching furthest so far
        members = [p for p in listed if p.table == table and p.count > 0]
        for point in sorted(members, key=lambda p: (p.address, p.end, p.name)):
            if reach is not None and point.address < reach.end:
                problems.append(f"point {reach} overlaps {point}")
            if reach is None or point.end > reach.end:
                reach = point
    return problems
