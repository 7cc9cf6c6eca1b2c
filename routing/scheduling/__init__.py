"""Scheduling and dispatch (pure): which cell runs each step, and in what order."""
