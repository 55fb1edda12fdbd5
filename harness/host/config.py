"""`rdplab host --config FILE`: a HostPolicy from a YAML file, checked field by field."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from .. import safe_yaml
from ..errors import HostConfigError
from .credentials import file_credential
from .policy import HostPolicy

_FIELDS: dict[str, type | tuple[type, ...]] = {
    "security_layer": int,
    "user_authentication": bool,
    "min_encryption_level": int,
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


# Values a field may take, checked after its type (a bad value would otherwise only show at the
# first connection, e.g. an unknown TLS version as an unusable credential).
_TLS = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
_VALUES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "security_layer": (lambda v: v in (0, 1, 2), "0 (RDP), 1 (negotiate) or 2 (TLS)"),
    "min_encryption_level": (lambda v: v in (1, 2, 3), "1 (low), 2 (client compatible) or "
                             "3 (high); 4 (FIPS) is not emulated"),
    "tls_min": (lambda v: v in _TLS, f"one of {', '.join(_TLS)}"),
    "tls_max": (lambda v: v in _TLS, f"one of {', '.join(_TLS)}"),
    "credssp_version": (lambda v: 2 <= v <= 6, "a CredSSP (TSRequest) version from 2 to 6"),
    "allow_encryption_oracle": (lambda v: v in (0, 1, 2), "0, 1 or 2"),
    "users": (lambda v: all(isinstance(k, str) and isinstance(p, str) for k, p in v.items()),
              "a mapping of user name to password, both strings"),
    "clock_offset": (lambda v: not isinstance(v, bool), "a number of seconds"),
    "deny_error_info": (lambda v: v is None or 0 < v <= 0xFFFFFFFF,
                        "an error info code (e.g. 7 for ERRINFO_SERVER_DENIED_CONNECTION) or null"),
    "update_burst_bytes": (lambda v: 0 <= v <= 64 * 1024 * 1024, "bytes, from 0 to 64 MiB"),
}


def _type_names(expected: type | tuple[type, ...]) -> str:
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string",
             dict: "a mapping", type(None): "null"}
    kinds = expected if isinstance(expected, tuple) else (expected,)
    if float in kinds:
        kinds = tuple(k for k in kinds if k is not int)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _line_of(text: str, key: str) -> int:
    for number, line in enumerate(text.splitlines(), 1):
        if line.split("#", 1)[0].strip().startswith(f"{key}:"):
            return number
    return 1


def load_host_config(path: Path) -> dict[str, Any]:
    """The checked mapping from a host config file (paths resolved against the file's folder)."""
    try:
        text = safe_yaml.read_text(path)
    except OSError as exc:
        raise HostConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise HostConfigError(f"{path}:{exc.line}: not UTF-8 text") from None  # type: ignore[attr-defined]
    except yaml.YAMLError as exc:
        raise HostConfigError(f"{path}:1: not valid YAML: {safe_yaml.describe(exc)}") from None
    try:
        data = safe_yaml.load(text) or {}
    except yaml.YAMLError as exc:
        line = safe_yaml.error_line(exc) or 1
        raise HostConfigError(f"{path}:{line}: not valid YAML: {safe_yaml.describe(exc)}") \
            from None
    if not isinstance(data, dict):
        raise HostConfigError(f"{path}:1: a host config is a mapping of settings")
    for key, value in data.items():
        where = f"{path}:{_line_of(text, str(key))}: field '{key}'"
        if key not in _FIELDS:
            raise HostConfigError(f"{where}: unknown; known fields: {', '.join(_FIELDS)}")
        expected = _FIELDS[key]
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise HostConfigError(f"{where}: expected {_type_names(expected)}, got {value!r}")
        check = _VALUES.get(str(key))
        if check is not None and not check[0](value):
            raise HostConfigError(f"{where}: expected {check[1]}, got {value!r}")
    versions = [data.get("tls_min", "TLSv1.2"), data.get("tls_max", "TLSv1.3")]
    if _TLS.index(versions[0]) > _TLS.index(versions[1]):
        key = "tls_min" if "tls_min" in data else "tls_max"
        raise HostConfigError(f"{path}:{_line_of(text, key)}: field '{key}': tls_min "
                              f"{versions[0]} is above tls_max {versions[1]}")
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
