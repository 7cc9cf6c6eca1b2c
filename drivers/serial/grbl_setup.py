"""Getting a GRBL machine ready for jobs: who it is, its settings, homing and unlocking.

Theory of operation. Everything here is a ``$`` command sent alone (send-response) on an
open :class:`Session`, between jobs:

* **Identify**: ``$I`` gives the build (``[VER:1.1h.20190825:]``) and the options line
  whose last field is the receive buffer's size (``[OPT:VL,15,128]``; grblHAL reports
  1024), which the character counter then uses unless the cell's config fixes it.
* **Settings**: ``$$`` is read and only the configured settings that differ are written,
  one at a time (EEPROM wear; an AVR loses serial bytes while it writes EEPROM).
* **Start-up**: GRBL left in check mode by a controller that died mid-check is taken out
  (``$C``, which resets it). Then the home policy (``$H`` at every connect, or only when
  locked) and, when GRBL is locked in ALARM, the unlock policy: ``$X`` never, unless the
  alarm was a hard limit (ALARM:1: position lost, the switch may still be pressed), or
  always. A lock from a soft limit found by our own check pass is always cleared (nothing
  moved). A lock that stays is explained by :meth:`Setup.locked`: the alarm's meaning and
  what a person should do.
"""

from __future__ import annotations

import logging

from drivers.serial import grbl_codec as codec
from drivers.serial.grbl_session import Session
from drivers.serial.grbl_settings import GrblSettings
from mes.errors import DeviceFault

log = logging.getLogger(__name__)


class Setup:
    """Identity and set-up of one GRBL machine (see the module docstring).

    Attributes:
        version: From the welcome line or ``$I`` (``Grbl 1.1h``).
        build: The build date ``$I`` reports (``20190825``).
        options: The ``[OPT:...]`` line of ``$I``.
        note: Why the last homing failed, for the lock message.
    """

    def __init__(self, name: str, settings: GrblSettings) -> None:
        self.name = name
        self.settings = settings
        self.version = ""
        self.build = ""
        self.options = ""
        self.note = ""

    async def identify(self, session: Session) -> None:
        """``$I`` (when GRBL is idle or locked and the config asks for it)."""
        s = self.settings
        if session.welcome:
            self.version = session.welcome
        report = session.report
        if not s.build_info or report is None or report.state not in ("Idle", "Alarm"):
            return
        for reply in await session.request("$I"):
            if isinstance(reply, codec.Feedback) and reply.kind == "VER":
                head = reply.text.split(":")[0]  # "1.1h.20190825"
                self.build = _date(head)
                version = head[: -len(self.build) - 1] if self.build else head
                self.version = self.version or f"Grbl {version}"
            elif isinstance(reply, codec.Feedback) and reply.kind == "OPT":
                self.options = reply.text
                parts = reply.text.split(",")
                if s.rx_buffer is None and len(parts) >= 3 and parts[2].isdigit():
                    size = int(parts[2])
                    if size > codec.MAX_LINE:
                        session.counter.size = size

    async def prepare(self, session: Session) -> None:
        """At connect, with no job of ours on the machine: check mode, settings, policies."""
        s = self.settings
        report = session.report
        if report is None or s.read_only:
            return
        if report.state == "Check":
            log.warning("GRBL %s was left in check mode; leaving it ($C resets GRBL)", self.name)
            await session.request("$C", resets=True)
            report = await session.refresh()
        if s.machine_settings and report.state == "Idle":
            await self.sync_settings(session)
        session.policy_done = True
        if s.home == "on_connect" and report.state in ("Idle", "Alarm"):
            await self.home(session)
        elif report.state == "Alarm":
            await self.unlock_by_policy(session)

    async def sync_settings(self, session: Session) -> None:
        """Write the configured ``$`` settings that differ from GRBL's, one at a time."""
        replies = await session.request("$$")
        current = {r.key: r.value for r in replies if isinstance(r, codec.Setting)}
        for key, value in self.settings.machine_settings.items():
            key = key if key.startswith("$") else f"${key}"
            if current.get(key) is None or _differs(current[key], str(value)):
                log.info("GRBL %s: writing %s=%s (was %s)", self.name, key, value, current.get(key))
                await session.request(f"{key}={value}")

    async def home(self, session: Session) -> bool:
        """``$H``; whether it homed (a failure is logged and kept in :attr:`note`)."""
        self.note = ""
        try:
            await session.request("$H", timeout_s=self.settings.homing_timeout_s, homing=True)
        except DeviceFault as exc:
            self.note = f"homing ($H) failed: {exc}"
            log.error("GRBL %s: %s", self.name, self.note)
        await session.refresh()
        return not self.note

    async def unlock(self, session: Session) -> None:
        await session.request("$X")
        await session.refresh()

    async def unlock_by_policy(self, session: Session) -> None:
        """GRBL is locked in ALARM: home, unlock or leave it locked, by the cell's policy."""
        s = self.settings
        alarm = session.alarm
        if session.alarm_from_check:
            log.info(
                "GRBL %s: unlocking after a soft limit in check mode (nothing moved)", self.name
            )
            await self.unlock(session)
        elif s.home in ("on_connect", "when_locked"):
            await self.home(session)
        elif s.unlock == "always" or (s.unlock == "unless_hard_limit" and alarm != 1):
            what = codec.alarm_text(alarm) if alarm else "the power-up lock"
            log.warning("GRBL %s: unlocking ($X) %s by policy %r", self.name, what, s.unlock)
            await self.unlock(session)
        else:
            log.error("GRBL %s: %s", self.name, self.locked(session))

    def locked(self, session: Session) -> str:
        """Why the cell will not take a job while GRBL is in ALARM, and what to do."""
        s = self.settings
        alarm = session.alarm
        why = codec.alarm_text(alarm) if alarm else "locked at power-up or after an alarm"
        note = f"; {self.note}" if self.note else ""
        return (
            f"GRBL is locked in ALARM: {why}{note}; home it ($H) or unlock it ($X) once the "
            f"machine is safe (unlock policy {s.unlock!r}, home policy {s.home!r})"
        )


def _date(head: str) -> str:
    """The build date in ``1.1h.20190825`` (empty when there is none)."""
    last = head.rsplit(".", 1)[-1]
    return last if len(last) == 8 and last.isdigit() else ""


def _differs(current: str, wanted: str) -> bool:
    try:
        return float(current) != float(wanted)
    except ValueError:
        return current.strip() != wanted.strip()
