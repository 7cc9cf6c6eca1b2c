"""Pure routing core: product families (configurator), per-unit process plans, scheduling.

Standard library and :mod:`mes.domain` / :mod:`mes.errors` only; no I/O.
"""
