"""YAML loading that remembers where every value came from, for errors that name the line."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .. import safe_yaml
from ..errors import ConfigError

PathKey = tuple[str | int, ...]


ScenarioFileError = ConfigError  # the name scenario code has always used


@dataclass
class SourcedDocument:
    """A parsed YAML document and the line of each value in it (1-based)."""

    path: Path
    data: Any
    lines: dict[PathKey, int] = field(default_factory=dict)

    def line_of(self, key: PathKey) -> int | None:
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key[:-1]
        return self.lines.get((), 1)

    def error(self, key: PathKey, message: str) -> ScenarioFileError:
        name = ".".join(str(k) for k in key) or None
        return ScenarioFileError(self.path, self.line_of(key), name, message)


def _scalar(node: yaml.Node, path: Path) -> Any:
    """A scalar (or a key) as the safe loader constructs it; an unusable one names its line."""
    try:
        return yaml.constructor.SafeConstructor().construct_object(node, deep=True)
    except (yaml.YAMLError, TypeError, ValueError) as exc:
        raise ScenarioFileError(path, node.start_mark.line + 1, None,
                                f"not valid YAML: {exc}") from None


def _convert(node: yaml.Node, key: PathKey, lines: dict[PathKey, int], path: Path) -> Any:
    lines[key] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for k_node, v_node in node.value:
            k = _scalar(k_node, path)
            if not isinstance(k, str):
                raise ScenarioFileError(
                    path,
                    k_node.start_mark.line + 1,
                    None,
                    f"mapping keys must be strings, got {k!r}",
                )
            if k in out:
                raise ScenarioFileError(
                    path, k_node.start_mark.line + 1, ".".join(map(str, (*key, k))), "appears twice"
                )
            out[k] = _convert(v_node, (*key, k), lines, path)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, (*key, i), lines, path) for i, item in enumerate(node.value)]
    return _scalar(node, path)


def load_sourced(path: Path, text: str | None = None) -> SourcedDocument:
    """Parse one YAML document, keeping lines; YAML errors become ScenarioFileError."""
    if text is None:
        try:
            text = safe_yaml.read_text(path)
        except OSError as exc:
            raise ScenarioFileError(
                path, None, None, f"cannot read: {exc.strerror or exc}"
            ) from exc
        except UnicodeDecodeError as exc:
            raise ScenarioFileError(path, exc.line, None, "not UTF-8 text") from None  # type: ignore[attr-defined]
        except yaml.YAMLError as exc:
            raise ScenarioFileError(path, 1, None, safe_yaml.describe(exc)) from None
    try:
        node = safe_yaml.compose(text)
    except yaml.YAMLError as exc:
        raise ScenarioFileError(
            path,
            safe_yaml.error_line(exc) or 1,
            None,
            f"not valid YAML: {safe_yaml.describe(exc)}",
        ) from None
    if node is None:
        raise ScenarioFileError(path, 1, None, "the file is empty")
    lines: dict[PathKey, int] = {}
    data = _convert(node, (), lines, path)
    return SourcedDocument(path, data, lines)
