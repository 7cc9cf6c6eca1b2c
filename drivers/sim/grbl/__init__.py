"""A virtual GRBL 1.1 (:mod:`.firmware`, :mod:`.motion`, :mod:`.gcode`, :mod:`.system`)
served on a pty or a TCP socket (:mod:`.port`)."""

from drivers.sim.grbl.firmware import DEFAULT_SETTINGS, JobRecord, SimGrbl
from drivers.sim.grbl.port import SimGrblPort, serve

__all__ = ["DEFAULT_SETTINGS", "JobRecord", "SimGrbl", "SimGrblPort", "serve"]
