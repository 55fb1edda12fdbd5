"""`rdplab host --config FILE`: a HostPolicy from a YAML file, checked field by field."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from ..errors import ConfigError, HostConfigError
from ..scenario.schema import load_checked, schema_of
from .credentials import file_credential
from .policy import HostPolicy

_TLS = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
# Every field and the values it may take: harness/data/schemas/host-config.schema.json.
_FIELDS: tuple[str, ...] = tuple(schema_of("host-config")["properties"])


def load_host_config(path: Path) -> dict[str, Any]:
    """The checked mapping from a host config file (paths resolved against the file's folder);
    HostConfigError naming file, line and field (the one config loader, scenario/schema.py)."""
    try:
        doc = load_checked(path, "host-config")
    except ConfigError as exc:
        if exc.message == "the file is empty":
            return {}
        raise HostConfigError(exc.path, exc.line, exc.field, exc.message) from None
    data: dict[str, Any] = dict(doc.data)
    versions = [data.get("tls_min", "TLSv1.2"), data.get("tls_max", "TLSv1.3")]
    if _TLS.index(versions[0]) > _TLS.index(versions[1]):
        key = "tls_min" if "tls_min" in data else "tls_max"
        raise HostConfigError(path, doc.line_of((key,)), key,
                              f"tls_min {versions[0]} is above tls_max {versions[1]}")
    if ("cert_file" in data) != ("key_file" in data):
        key = "cert_file" if "cert_file" in data else "key_file"
        raise HostConfigError(path, doc.line_of((key,)), key,
                              "give both cert_file and key_file, or neither")
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
