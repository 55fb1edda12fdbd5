"""Matrix cells as pytest items, collected from the fault files (as tavern collects YAML tests).

`pytest scenarios/` runs the matrix: one item per (fault, remediation), named
`<fault>.yaml::<remediation>`, so `-k`, `-n`, `--lf` and `--junitxml` work. An item passes when
its cell ran (its outcome, fixed or not, is a result and is shown in the report), is skipped
when the cell is not emulated, and fails on a lab error. Options: --rdplab-lab,
--rdplab-backend, --rdplab-profile.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ..lab import registry
from ..lab.definition import load_lab
from ..pki import KeyPool
from ..scenario.catalog import load_catalog, load_fault
from .cell import CellOptions, run_cell


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("rdplab")
    group.addoption("--rdplab-lab", default="default", help="lab name or file")
    group.addoption("--rdplab-backend", default="auto", help=", ".join(registry.choices()))
    group.addoption("--rdplab-profile", default=None, help="the client profile that decides")


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    if file_path.suffix == ".yaml" and file_path.parent.name == "scenarios":
        return FaultFile.from_parent(parent, path=file_path)
    return None


class FaultFile(pytest.File):
    def collect(self):  # type: ignore[no-untyped-def]
        fault = load_fault(self.path)
        spec = load_lab(self.config.getoption("--rdplab-lab"))
        if not fault.applies_to(spec.name):
            return
        catalog = load_catalog(self.path.parent)
        for remediation in catalog.remediations:
            yield CellItem.from_parent(self, name=remediation, fault=fault.id,
                                       remediation=remediation)


class CellItem(pytest.Item):
    def __init__(self, *, fault: str, remediation: str, **kw: Any) -> None:
        super().__init__(**kw)
        self.fault, self.remediation = fault, remediation

    def runtest(self) -> None:
        config = self.config
        opts = CellOptions(
            lab=str(load_lab(config.getoption("--rdplab-lab")).path),
            backend=registry.resolve(config.getoption("--rdplab-backend")),
            scenarios=str(self.path.parent), profile=config.getoption("--rdplab-profile"),
        )
        with KeyPool(2):
            result = run_cell(opts, self.fault, self.remediation)
        self.user_properties += [("outcome", result.outcome), ("backend", result.backend),
                                 ("reason", result.reason)]
        if result.outcome == "not-emulated":
            pytest.skip(f"not emulated: {result.reason}")
        if result.outcome == "lab-error":
            raise CellLabError(result.reason)
        self.add_report_section("call", "outcome", f"{result.outcome}: {result.reason}")

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style=None) -> str:  # type: ignore[no-untyped-def, override]
        if isinstance(excinfo.value, CellLabError):
            return f"lab error: {excinfo.value}"
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"{self.fault} × {self.remediation}"


class CellLabError(Exception):
    pass
