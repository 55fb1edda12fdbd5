"""The syntax tree of the PowerShell subset: statements, pipelines, commands, expressions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Literal:
    value: Any


@dataclass
class VarRef:
    name: str  # "x", "env:ProgramData"
    props: list[str] = field(default_factory=list)


@dataclass
class Text:
    """An expandable string or bare word: literal pieces, variables and subexpressions."""

    parts: list[Any]


@dataclass
class SubExpr:
    """$( ... ), ( ... ) or @( ... ): the output of the statements inside."""

    statements: list[Any]
    props: list[str] = field(default_factory=list)
    array: bool = False


@dataclass
class ArrayExpr:
    items: list[Any]


@dataclass
class Param:
    name: str
    value: Any | None  # -Name:value
    text: str
    line: int


@dataclass
class Command:
    name: Any  # Text or Literal
    args: list[Any]
    line: int
    call_operator: bool = False
    text: str = ""


@dataclass
class ExprStage:
    expr: Any
    line: int


@dataclass
class Pipeline:
    stages: list[Any]
    line: int
    text: str
    discard: bool = False  # > $null, 2>&1 > $null …


@dataclass
class Assignment:
    name: str
    value: Pipeline
    line: int
    text: str


@dataclass
class Exit:
    code: Any | None
    line: int
    text: str


@dataclass
class Script:
    params: list[tuple[str, Any | None]]
    statements: list[Any]
