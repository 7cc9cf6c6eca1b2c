"""The simulated GRBL's ``$`` commands (grbl 1.1h ``system_execute_line``).

``$$ $G $C $X`` are allowed in more states than the rest; every other ``$`` command needs
``Idle`` or ``Alarm`` (``error:8``). Writing a setting takes ``eeprom_write_s`` during
which the serial interrupt is off: bytes arriving meanwhile are lost, which is why a host
must send settings one at a time (interface.md "EEPROM Issues").
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING

from drivers.sim.grbl.gcode import GcodeError, Interpreter, Move, words_of
from drivers.sim.grbl.motion import Block

if TYPE_CHECKING:
    from drivers.sim.grbl.firmware import SimGrbl

_SETTING = re.compile(r"^\$(\d+)=(.*)$")
_STARTUP = re.compile(r"^\$N([01])=(.*)$")
HELP = "[HLP:$$ $# $G $I $N $x=val $Nx=line $J=line $SLP $C $X $H ~ ! ? ctrl-x]"


async def execute(grbl: SimGrbl, line: str) -> str:
    """Run one ``$`` line; the answer (``ok`` or ``error:N``)."""
    if line == "$":
        grbl.say(HELP)
        return "ok"
    if line.startswith("$J="):
        return await _jog(grbl, line[3:])
    if line in ("$$", "$G", "$C", "$X"):
        return _basic(grbl, line[1])
    if line[1:2] in ("$", "G", "C", "X"):
        return "error:3"
    if grbl.state not in ("Idle", "Alarm"):
        return "error:8"
    if line == "$#":
        wco = grbl.interpreter.offsets
        for number in range(54, 60):
            grbl.say(f"[G{number}:{_xyz(wco[number])}]")
        grbl.say(f"[G28:{_xyz(grbl.interpreter.home_positions[28])}]")
        grbl.say(f"[G30:{_xyz(grbl.interpreter.home_positions[30])}]")
        grbl.say(f"[G92:{_xyz(grbl.interpreter.g92)}]")
        grbl.say("[TLO:0.000]")
        grbl.say("[PRB:0.000,0.000,0.000:0]")
        return "ok"
    if line == "$H":
        return await _home(grbl)
    if line == "$I":
        grbl.say(f"[VER:{grbl.version}.20190825:]")
        grbl.say(f"[OPT:VL,{grbl.planner_blocks},{grbl.rx_size}]")
        return "ok"
    if line == "$N":
        for index, text in enumerate(grbl.startup_lines):
            grbl.say(f"$N{index}={text}")
        return "ok"
    if line == "$SLP":
        grbl.stepper.flush()
        grbl.state, grbl.substate = "Sleep", None
        grbl.say("[MSG:Sleeping]")
        return "ok"
    if line.startswith("$RST="):
        if line[5:] not in ("$", "#", "*"):
            return "error:3"
        if line[5:] in ("$", "*"):
            from drivers.sim.grbl.firmware import DEFAULT_SETTINGS

            grbl.settings = dict(DEFAULT_SETTINGS)
        grbl.say("[MSG:Restoring defaults]")
        return "ok"
    if match := _STARTUP.match(line):
        grbl.startup_lines[int(match[1])] = match[2]
        return "ok"
    if match := _SETTING.match(line):
        return await _write_setting(grbl, line, int(match[1]), match[2])
    return "error:3"


def _basic(grbl: SimGrbl, command: str) -> str:
    if command == "$":
        if grbl.state in ("Run", "Hold"):
            return "error:8"
        for key, value in grbl.settings.items():
            grbl.say(f"${key}={value}")
    elif command == "G":
        grbl.say(f"[GC:{grbl.interpreter.modal.describe()}]")
    elif command == "C":
        if grbl.check_mode:
            grbl.say("[MSG:Disabled]")
            grbl.reset_after_answer = True  # GRBL resets itself after the ok
        elif grbl.state != "Idle":
            return "error:8"
        else:
            grbl.check_mode = True
            grbl.state = "Check"
            grbl.say("[MSG:Enabled]")
    elif command == "X" and grbl.state == "Alarm":
        grbl.state, grbl.substate = "Idle", None
        grbl.say("[MSG:Caution: Unlocked]")
    grbl.notify()
    return "ok"


async def _write_setting(grbl: SimGrbl, line: str, key: int, text: str) -> str:
    if key not in grbl.settings:
        return "error:3"
    try:
        value = float(text)
    except ValueError:
        return "error:2"
    if value < 0:
        return "error:4"
    if key == 0 and value < 3:
        return "error:6"
    if key == 20 and value and grbl.settings[22] != "1":
        return "error:10"
    grbl.settings_writes.append((line, grbl.rx_waiting()))
    grbl.eeprom(True)  # the serial interrupt is off while the EEPROM is written
    try:
        await asyncio.sleep(grbl.eeprom_write_s)
    finally:
        grbl.eeprom(False)
    grbl.settings[key] = text if key in (2, 3, 10, 23) else _setting_text(key, value)
    return "ok"


def _setting_text(key: int, value: float) -> str:
    whole = key in (0, 1, 4, 5, 6, 20, 21, 22, 26, 30, 31, 32)
    return f"{value:.0f}" if whole else f"{value:.3f}"


async def _home(grbl: SimGrbl) -> str:
    if grbl.settings[22] != "1":
        return "error:5"
    grbl.state, grbl.substate = "Home", None
    grbl.notify()
    await asyncio.sleep(grbl.homing_s / grbl.speed)
    grbl.stepper.set_position((0.0, 0.0, 0.0))
    grbl.state = "Idle"
    grbl.notify()
    return "ok"


async def _jog(grbl: SimGrbl, text: str) -> str:
    if grbl.state not in ("Idle", "Jog"):
        return "error:8"
    scratch = Interpreter()
    scratch.offsets, scratch.g92 = grbl.interpreter.offsets, grbl.interpreter.g92
    scratch.modal.wcs, scratch.modal.units = (
        grbl.interpreter.modal.wcs,
        grbl.interpreter.modal.units,
    )
    scratch.position = grbl.position if not grbl.stepper.planner else grbl.interpreter.position
    try:
        words = words_of(text)
        if "F" not in dict(words) or any(
            letter == "M" or (letter == "G" and value in (0, 2, 3)) for letter, value in words
        ):
            return "error:16"
        actions = scratch.execute("G1" + text)
    except GcodeError:
        return "error:16"
    moves = [a for a in actions if isinstance(a, Move)]
    if not moves:
        return "error:16"
    move = moves[-1]
    if grbl.settings[20] == "1" and any(
        t > 0 or t < -float(grbl.settings[130 + i]) for i, t in enumerate(move.target)
    ):
        return "error:15"
    grbl.state = "Jog"
    await grbl.stepper.plan(Block.of(move, grbl))
    grbl.interpreter.position = move.target
    return "ok"


def _xyz(values: tuple[float, ...]) -> str:
    return ",".join(f"{v:.3f}" for v in values)
