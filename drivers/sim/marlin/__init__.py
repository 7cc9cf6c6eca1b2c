"""A virtual Marlin printer (:mod:`.firmware`) served on a pty or a TCP socket (:mod:`.port`)."""

from drivers.sim.marlin.firmware import CAPABILITIES, JobRecord, SimMarlin
from drivers.sim.marlin.port import SimMarlinPort, serve

__all__ = ["CAPABILITIES", "JobRecord", "SimMarlin", "SimMarlinPort", "serve"]
