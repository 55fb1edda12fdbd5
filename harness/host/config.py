"""`rdplab host --config FILE`: a HostPolicy from a YAML file, checked field by field."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml

from .credentials import file_credential
from .policy import HostPolicy

_FIELDS: dict[str, type | tuple[type, ...]] = {
    "security_layer": int,
    "user_authentication": bool,
    "tls_min": str,
    "tls_max": str,
    "cert_file": str,
    "key_file": str,
    "credssp_version": int,
    "allow_encryption_oracle": int,
    "users": dict,
    "domain": str,
    "computer_name": str,
    "dns_domain": str,
    "clock_offset": (int, float),
    "deny_error_info": (int, type(None)),
    "update_burst_bytes": int,
}


class HostConfigError(ValueError):
    """A config file that cannot be used; the message names the file, line and field."""


def _line_of(text: str, key: str) -> int:
    for number, line in enumerate(text.splitlines(), 1):
        if line.split("#", 1)[0].strip().startswith(f"{key}:"):
            return number
    return 1


def load_host_config(path: Path) -> dict[str, Any]:
    """The checked mapping from a host config file (paths resolved against the file's folder)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise HostConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise HostConfigError(f"{path}{line}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise HostConfigError(f"{path}:1: a host config is a mapping of settings")
    for key, value in data.items():
        where = f"{path}:{_line_of(text, str(key))}: field '{key}'"
        if key not in _FIELDS:
            raise HostConfigError(f"{where}: unknown; known fields: {', '.join(_FIELDS)}")
        expected = _FIELDS[key]
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise HostConfigError(f"{where}: expected {expected}, got {value!r}")
    if ("cert_file" in data) != ("key_file" in data):
        raise HostConfigError(f"{path}: give both cert_file and key_file, or neither")
    for key in ("cert_file", "key_file"):
        if key in data:
            data[key] = (path.parent / data[key]).resolve()
    return data


def policy_from_mapping(data: dict[str, Any], cert_file: Path, key_file: Path) -> HostPolicy:
    """A HostPolicy whose credential is re-read from the files at every connection."""
    settings = {k: v for k, v in data.items() if k not in ("cert_file", "key_file")}
    loader = functools.partial(file_credential, Path(data.get("cert_file", cert_file)),
                               Path(data.get("key_file", key_file)))
    return HostPolicy(load_credential=loader, **settings)
