"""Where a host reaches the simulated Marlin printer: the shared simulated serial line
(:mod:`drivers.sim.serial_line`), on a pseudo-terminal and on a TCP socket."""

from drivers.sim.serial_line import SimSerialPort, serve

__all__ = ["SimMarlinPort", "serve"]

SimMarlinPort = SimSerialPort
