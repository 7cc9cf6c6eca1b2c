"""Scheduling and dispatch (pure): which cell runs each step, and in what order.

- :mod:`~routing.scheduling.model`: the problem (operations, machines, jobs, setups,
  availability) and a schedule, as plain data.
- :mod:`~routing.scheduling.dispatch`: the real-time rule (a freed cell picks its next
  step in microseconds), selectable by name, setup-aware, following a plan if given.
- :mod:`~routing.scheduling.heuristic`: a whole problem scheduled by the dispatcher
  simulated forward in time, with restarts and a critical-path tabu search
  (:mod:`~routing.scheduling.construct`, :mod:`~routing.scheduling.tabu`).
- :mod:`~routing.scheduling.optimizer`: CP-SAT plus neighbourhood search in a worker
  process (extra ``opt``; :mod:`~routing.scheduling.cpsat` holds the model).
- :mod:`~routing.scheduling.check`: every violation of a schedule, for tests and reports.
- :mod:`~routing.scheduling.fjsp`: the flexible job-shop benchmark format.
"""
