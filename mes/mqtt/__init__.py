"""The plant on MQTT: a Unified Namespace published from the transactional outbox, and
orders taken in from upstream (docs/mqtt.md).

``topics`` (the tree and payloads) and ``messenger`` (changes -> messages) and ``drain``
(what to publish next) are pure; ``outbox`` (its SQL), ``role`` (one publisher per
database), ``link`` (paho-mqtt on the event loop), ``publisher``, ``intake`` and ``serve``
(composition, called by :mod:`mes.bootstrap`) are the shell.
"""
