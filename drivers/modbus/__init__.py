"""Modbus TCP/RTU driver: a pure codec (:mod:`drivers.modbus.codec`) apart from its I/O."""
