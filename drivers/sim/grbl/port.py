"""Where a host reaches the simulated GRBL machine: the shared simulated serial line
(:mod:`drivers.sim.serial_line`), on a pseudo-terminal and on a TCP socket."""

from drivers.sim.serial_line import SimSerialPort, serve

__all__ = ["SimGrblPort", "serve"]

SimGrblPort = SimSerialPort
