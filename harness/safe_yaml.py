"""YAML with limits: every file the lab reads (scenarios, labs, remediation sidecars, host
configs, client profiles) goes through here.

PyYAML's safe loader still expands aliases, so a few hundred bytes can stand for billions of
values (an alias bomb), and a self-referencing anchor builds a cyclic graph that recursive code
then follows for ever. Here a document is refused, with its line, when it is larger than
MAX_BYTES, nests deeper than MAX_DEPTH, uses more than MAX_ALIASES aliases, refers to an anchor
from inside itself, or would expand to more than MAX_VALUES values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

MAX_BYTES = 1 << 20
MAX_DEPTH = 64
MAX_ALIASES = 256
MAX_VALUES = 100_000


class YamlLimitError(yaml.MarkedYAMLError):
    """A document over one of the limits; `problem_mark` holds its place (0-based line)."""

    def __init__(self, problem: str, mark: yaml.Mark | None) -> None:
        super().__init__(problem=problem, problem_mark=mark)


class _LimitedLoader(yaml.SafeLoader):
    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._aliases = 0
        self._depth = 0
        self._open: set[str] = set()  # anchors whose node is being composed

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            if event.anchor in self._open:
                raise YamlLimitError(f"alias *{event.anchor} refers to its own anchor "
                                     "(a self-referencing document)", event.start_mark)
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise YamlLimitError(f"more than {MAX_ALIASES} aliases", event.start_mark)
            return super().compose_node(parent, index)
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise YamlLimitError(f"nested deeper than {MAX_DEPTH} levels", event.start_mark)
        anchor = getattr(event, "anchor", None)
        if anchor:
            self._open.add(anchor)
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1
            if anchor:
                self._open.discard(anchor)


def _check_expansion(root: yaml.Node) -> None:
    """Refuse a graph that would expand (aliases followed) to more than MAX_VALUES values."""
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:  # post-order, iterative: depth is already bounded, this stays linear
        node, done = stack.pop()
        if id(node) in sizes:
            continue
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        if not done:
            stack.append((node, True))
            stack.extend((c, False) for c in children if id(c) not in sizes)
            continue
        total = 1 + sum(sizes.get(id(c), 1) for c in children)
        if total > MAX_VALUES:
            raise YamlLimitError(f"expands to more than {MAX_VALUES} values (aliases repeat "
                                 "too much)", node.start_mark)
        sizes[id(node)] = total


def compose(text: str) -> yaml.Node | None:
    """The node graph of a single document, within the limits (YAMLError otherwise)."""
    if len(text) > MAX_BYTES:
        raise YamlLimitError(f"larger than {MAX_BYTES} bytes", None)
    loader = _LimitedLoader(text)
    try:
        node = loader.get_single_node()
    finally:
        loader.dispose()
    if node is not None:
        _check_expansion(node)
    return node


def load(text: str) -> Any:
    """yaml.safe_load with the limits (YAMLError otherwise)."""
    if len(text) > MAX_BYTES:
        raise YamlLimitError(f"larger than {MAX_BYTES} bytes", None)
    loader = _LimitedLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def read_text(path: Path) -> str:
    """A YAML file's text; UnicodeDecodeError (a ValueError) carries `line` of the bad byte."""
    raw = path.read_bytes()
    if len(raw) > MAX_BYTES:
        raise YamlLimitError(f"larger than {MAX_BYTES} bytes", None)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        exc.line = raw.count(b"\n", 0, exc.start) + 1  # type: ignore[attr-defined]
        raise


def error_line(exc: yaml.YAMLError) -> int | None:
    """The 1-based line a YAML error points at, if it has one."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    return mark.line + 1 if mark is not None else None


def describe(exc: yaml.YAMLError) -> str:
    """The problem alone (PyYAML's str() repeats the whole context)."""
    return str(getattr(exc, "problem", None) or exc)
