"""Load the plant file and its product family files, or say everything wrong with them.

:func:`load_plant` reads ``plant.toml``, then every ``*.toml`` in its products directory
(sorted), validates each with the pydantic models of :mod:`mes.settings.schema`, runs
the rules of :mod:`mes.settings.checks`, then the checks that span files (duplicate
family names, steps needing a capability no cell offers). It keeps going after a
problem wherever the rest can still be judged, and raises one
:class:`~mes.errors.ConfigError` holding every problem, each with its file, line and
key path (see :mod:`mes.settings.toml_lines` for how paths are written). Library errors
(OSError, tomllib, pydantic) never escape: they are the reasons of those problems.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from mes.errors import ConfigError, NotFound, Problem
from mes.settings.checks import check_capabilities, check_family, check_plant
from mes.settings.issues import Issue, from_validation_error
from mes.settings.schema import CellConfig, FamilyConfig, PlantConfig
from mes.settings.stock_checks import check_stages, check_stock_targets
from mes.settings.toml_lines import KeyLines, Segment, render_path, scan, syntax_problem
from routing.family import Family

DEFAULT_PLANT_PATH = Path("config/plant.toml")
PLANT_FILE_NAME = "plant.toml"

ModelT = TypeVar("ModelT", bound=BaseModel)


@dataclass(frozen=True)
class Plant:
    """A loaded, checked plant: its cells and its product families.

    Attributes:
        path: the plant file.
        config: the plant file's contents.
        families: every product family, by family name.
        family_files: the file each family came from, by family name.
    """

    path: Path
    config: PlantConfig
    families: dict[str, Family]
    family_files: dict[str, Path]

    @property
    def cells(self) -> list[CellConfig]:
        """The cells, in the order of the plant file."""
        return list(self.config.cells)

    def cell(self, name: str) -> CellConfig:
        """The cell called ``name``.

        Raises:
            NotFound: no cell has that name.
        """
        for cell in self.config.cells:
            if cell.name == name:
                return cell
        known = ", ".join(c.name for c in self.config.cells)
        raise NotFound(f"no cell {name!r} (cells: {known})")


@dataclass(frozen=True)
class _Document:
    """One parsed TOML file, with where its keys are."""

    file: Path
    data: dict[str, Any]
    lines: KeyLines

    @property
    def label(self) -> str:
        return str(self.file)

    def problem(self, path: Sequence[Segment], reason: str) -> Problem:
        return Problem(reason, self.label, self.lines.line_of(path), render_path(path))

    def problems(self, issues: Sequence[Issue]) -> list[Problem]:
        return [self.problem(issue.path, issue.reason) for issue in issues]


def load_plant(path: Path | str) -> Plant:
    """Load and check a plant and its product families.

    Args:
        path: the plant TOML file, or a directory holding ``plant.toml``.

    Returns:
        The plant, with every family converted to :class:`routing.family.Family`.

    Raises:
        ConfigError: with every problem found, across all files.
    """
    given = Path(path)
    plant_file = given / PLANT_FILE_NAME if _is_dir(given) else given
    problems: list[Problem] = []
    document = _read(plant_file, problems)
    if document is None:
        raise ConfigError(problems)
    config = _validate(PlantConfig, document, problems)
    if config is not None:
        problems += document.problems(check_plant(config, document.lines))
    families, family_files = _load_families(document, config, problems)
    if config is not None and not problems:
        # Only sound families say what a blank is.
        problems += document.problems(check_stock_targets(config, families, document.lines))
    if problems or config is None:
        raise ConfigError(_in_reading_order(problems))
    return Plant(plant_file, config, families, family_files)


def _load_families(
    plant: _Document, config: PlantConfig | None, problems: list[Problem]
) -> tuple[dict[str, Family], dict[str, Path]]:
    """Read every family file of the plant's products directory."""
    products = config.plant.products if config is not None else _raw_products(plant.data)
    families: dict[str, Family] = {}
    family_files: dict[str, Path] = {}
    first_seen: dict[str, str] = {}
    for file in _family_files(plant, plant.file.parent / products, problems):
        document = _read(file, problems)
        if document is None:
            continue
        family_config = _validate(FamilyConfig, document, problems)
        if family_config is None:
            continue
        issues, family = check_family(family_config, document.lines, document.label)
        if config is not None:
            # Only a valid plant says which capabilities exist; otherwise this would
            # blame the family for the plant's mistake.
            issues += check_capabilities(family_config, config.cells)
            issues += check_stages(family_config, config.cells)
        name_path = ("family", "name")
        if family.name in first_seen:
            issues.append(
                Issue(
                    name_path,
                    f"duplicate family name {family.name!r} (first in {first_seen[family.name]})",
                )
            )
        else:
            first_seen[family.name] = f"{document.label}:{document.lines.line_of(name_path)}"
        if issues:
            problems += document.problems(issues)
            continue
        families[family.name] = family
        family_files[family.name] = file
    return families, family_files


def _family_files(plant: _Document, directory: Path, problems: list[Problem]) -> list[Path]:
    """The ``*.toml`` files of the products directory, sorted; a problem if none."""
    where = ("plant", "products")
    if not _is_dir(directory):
        problems.append(plant.problem(where, f"products directory not found: {directory}"))
        return []
    try:
        files = sorted(p for p in directory.glob("*.toml") if p.is_file())
    except OSError as exc:
        problems.append(plant.problem(where, f"cannot read {directory}: {_os_reason(exc)}"))
        return []
    if not files:
        problems.append(plant.problem(where, f"no product family files (*.toml) in {directory}"))
    return files


def _raw_products(data: dict[str, Any]) -> str:
    """The products directory from a plant file that did not validate, if it says one.

    Reading on lets the family files be checked in the same run as the plant file.
    """
    section = data.get("plant")
    products = section.get("products") if isinstance(section, dict) else None
    return products if isinstance(products, str) and products.strip() else "products"


def _read(file: Path, problems: list[Problem]) -> _Document | None:
    """Read and parse one TOML file, or add a problem and return None."""
    label = str(file)
    try:
        text = file.read_bytes().decode("utf-8")
    except OSError as exc:
        problems.append(Problem(f"cannot read: {_os_reason(exc)}", label))
        return None
    except UnicodeDecodeError as exc:
        problems.append(Problem(f"not UTF-8 text (bad byte at offset {exc.start})", label))
        return None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        problems.append(syntax_problem(str(exc), text, label))
        return None
    return _Document(file, data, scan(text))


def _validate(model: type[ModelT], document: _Document, problems: list[Problem]) -> ModelT | None:
    """Validate a document against a model; on failure add its problems, return None."""
    try:
        return model.model_validate(document.data)
    except ValidationError as exc:
        problems += document.problems(from_validation_error(model, exc))
        return None


def _in_reading_order(problems: list[Problem]) -> list[Problem]:
    """Files in the order they were read; within a file, top to bottom."""
    order = {file: i for i, file in reversed(list(enumerate(p.file for p in problems)))}
    return sorted(problems, key=lambda p: (order[p.file], p.line or 0))


def _os_reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:  # e.g. a permission error on a parent: then it is no usable directory
        return False
