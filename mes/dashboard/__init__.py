"""The dashboard: a Textual app that watches the plant through the store and queues
operator requests in it; it never talks to a device or to the controller directly.

Start it with ``mes dashboard`` (see :mod:`mes.dashboard.command`).
"""
