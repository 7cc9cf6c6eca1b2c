"""The options several CLI commands share, declared once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

DbOption = Annotated[
    str | None,
    typer.Option("--db", help="SQLAlchemy URL or SQLite path [env MES_DB; default ./mes.db]"),
]
PlantOption = Annotated[
    Path, typer.Option("--plant", help="Plant config file, or a directory with plant.toml.")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
ReasonOption = Annotated[str, typer.Option("--reason", "-r", help="Why (kept in the audit trail).")]
ActorOption = Annotated[
    str, typer.Option("--actor", help="Who asks [default: $USER]", show_default=False)
]
WaitOption = Annotated[
    float, typer.Option("--wait", help="Seconds to wait for the controller's answer.")
]
