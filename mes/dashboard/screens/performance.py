"""Performance: throughput per hour against a target, OEE per cell and for the plant,
lead time, and a sparkline of units done over the last hours."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Sparkline, Static

from mes.dashboard.data import Snapshot
from mes.dashboard.figures import duration, percent
from mes.dashboard.performance import BUCKETS, Oee, Performance
from mes.dashboard.screens.base import DashboardScreen
from mes.domain.accounting import CATEGORIES

OEE_COLUMNS = ("cell", "OEE", "avail", "perf", "quality", "jobs", *CATEGORIES)


class PerformanceScreen(DashboardScreen):
    MODE = "performance"
    BINDINGS = [Binding("r", "recompute", "Recompute now")]

    def __init__(self) -> None:
        super().__init__()
        self._shown: Performance | None = None
        self._widths: list[int] = []

    def body(self) -> ComposeResult:
        yield Static("computing the figures of the last hours...", id="perf-summary")
        yield Static("", id="spark-label")
        yield Sparkline([0.0] * BUCKETS, id="spark")
        table: DataTable[Any] = DataTable(id="oee", cursor_type="row", zebra_stripes=True)
        table.add_columns(*OEE_COLUMNS)
        yield table

    def action_recompute(self) -> None:
        self.dashboard.reader.refresh_performance()
        self.dashboard.tick()

    def show(self, snapshot: Snapshot) -> None:
        perf = snapshot.performance
        if perf is None or perf is self._shown:
            return
        self._shown = perf
        hours = perf.window_s / 3600
        if perf.target_h:
            gap = (
                f"behind by {perf.behind}"
                if perf.behind > 0
                else f"ahead by {-perf.behind}"
                if perf.behind < 0
                else "on target"
            )
            target = f" vs {perf.target_source} {perf.target_h:.1f}/h: {gap}"
        else:
            target = " (no target: --target N)"
        lead = (
            f"lead time mean {duration(perf.lead_mean_s)}, median {duration(perf.lead_median_s)}"
            if perf.lead_mean_s is not None and perf.lead_median_s is not None
            else "lead time: no unit done yet"
        )
        if perf.lead is not None:
            split = perf.lead
            lead = (
                f"{lead}, p95 {duration(split.p95_s)} "
                f"({split.units} units, {split.from_stock} from stock)\n"
                f"   = custom {duration(split.custom_s)} + generic {duration(split.generic_s)}"
                f" + waiting {duration(split.waiting_s)}"
            )
        plant = perf.plant
        scale = f" (plant time, x{self.dashboard.speed:g})" if self.dashboard.speed != 1 else ""
        self.query_one("#perf-summary", Static).update(
            f" [b]Throughput {perf.throughput_h:.1f} units/h[/b]{target}\n"
            f" last {hours:g} h{scale}: {perf.done} done, {perf.scrapped} scrapped\n {lead}\n"
            f" [b]Plant OEE {percent(plant.oee) or '-'}[/b] = availability "
            f"{percent(plant.availability) or '-'} x performance "
            f"{percent(plant.performance) or '-'} x quality {percent(plant.quality) or '-'}"
        )
        self.query_one("#spark-label", Static).update(
            f" units done per {duration(perf.window_s / BUCKETS)}, last {hours:g} h "
            f"(peak {max(perf.buckets)}):"
        )
        self.query_one("#spark", Sparkline).data = [float(n) for n in perf.buckets]
        table = self.query_one("#oee", DataTable)
        rows = [_row(o) for o in (*perf.cells, plant)]
        # Columns as wide as their widest value, set here rather than measured by the
        # table when it next idles: the table is drawn right, whenever it is drawn.
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(OEE_COLUMNS)]
        if table.row_count != len(rows) or widths != self._widths:
            table.clear(columns=True)
            for header, width in zip(OEE_COLUMNS, widths, strict=True):
                table.add_column(header, width=width, key=header)
            for row in rows:
                table.add_row(*row, key=row[0])
            self._widths = widths
        else:
            for row in rows:
                for column, value in zip(OEE_COLUMNS, row, strict=True):
                    table.update_cell(row[0], column, value)


def _row(o: Oee) -> tuple[str, ...]:
    return (
        o.name,
        percent(o.oee) or "-",
        percent(o.availability) or "-",
        percent(o.performance) or "-",
        percent(o.quality) or "-",
        str(o.jobs),
        *(percent(o.shares.get(k, 0.0)) for k in CATEGORIES),
    )
