"""Serial-line cells: Marlin-style printers (GRBL later) over pyserial (docs/serial.md)."""
