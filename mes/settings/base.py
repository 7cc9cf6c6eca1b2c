"""Shared pieces of the settings models: the strict base model and checked name types."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,47}$")
CAPABILITY_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")
IDENTIFIER_RE = re.compile(r"^[a-z][a-z0-9_]*$")

STAGE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9 '-]{0,39}$")

OPTION_TYPES = ("choice", "integer", "decimal", "text", "boolean")


def _name(value: str) -> str:
    if not NAME_RE.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a valid name (lowercase letters, digits, '-' and '_', "
            "starting with a letter or digit, at most 48 characters)"
        )
    return value


def _capability(value: str) -> str:
    if not CAPABILITY_RE.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a valid capability (dotted lowercase words, e.g. 'print.fdm')"
        )
    return value


def _identifier(value: str) -> str:
    if not IDENTIFIER_RE.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a valid option name "
            "(lowercase letters, digits and '_', starting with a letter)"
        )
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def _stage(value: str) -> str:
    if not STAGE_RE.fullmatch(value) or value != value.strip():
        raise ValueError(
            f"{value!r} is not a stage a customer reads (words of letters, digits, spaces, "
            "'-' and \"'\", starting with a letter, at most 40 characters)"
        )
    return value


Name = Annotated[str, AfterValidator(_name)]
Stage = Annotated[str, AfterValidator(_stage)]
Capability = Annotated[str, AfterValidator(_capability)]
Identifier = Annotated[str, AfterValidator(_identifier)]
NonBlank = Annotated[str, AfterValidator(_not_blank)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
