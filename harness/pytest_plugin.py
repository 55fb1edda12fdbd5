"""rdplab's pytest plugin (entry point `pytest11: rdplab`, loaded with the package).

Fixtures for your own tests:
- `rdp_lab`: a fresh lab per test (`harness.testing.RdpLab`: `inject`, `run`, `probe`,
  `shell`), torn down after the test, also when it fails;
- `rdp_lab_factory`: `rdp_lab_factory(lab=None, backend=None)` makes more labs in one test,
  each torn down after it.

Matrix cells as test items (as tavern collects YAML tests): the fault files of a scenario folder
(one named `scenarios` with a `remediations/` folder, or any folder given with
`--rdplab-scenarios DIR`) become one item per (fault, remediation), `<fault>.yaml::<remediation>`,
so `-k`, `-n` (pytest-xdist), `--lf` and `--junitxml` work. An item FAILS when its outcome
differs from the pinned one (`tests/golden/<lab>-<backend>.json`, `--rdplab-golden DIR`), saying
how to update the pin; a cell nothing pins passes when it ran, fails on a lab error. Not-emulated
cells are skipped with the reason.

Options: --rdplab-lab, --rdplab-backend, --rdplab-profile, --rdplab-scenarios, --rdplab-golden.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .ci.golden import GOLDEN_DIR, UPDATE_COMMAND, golden_path, load_golden, pinned_outcome
from .lab import registry
from .lab.definition import load_lab
from .pki import KeyPool
from .scenario.catalog import load_catalog, load_fault
from .testing import RdpLab

LabFactory = Callable[..., RdpLab]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("rdplab")
    group.addoption("--rdplab-lab", default="default", help="lab name or file (default: default)")
    group.addoption("--rdplab-backend", default="auto",
                    help="auto, loopback, netns or vagrant (default: auto)")
    group.addoption("--rdplab-profile", default=None, help="the client profile that decides")
    group.addoption("--rdplab-scenarios", default=None, metavar="DIR",
                    help="collect the matrix cells of this scenario folder (any name)")
    group.addoption("--rdplab-golden", default=None, metavar="DIR",
                    help=f"where the pinned matrices are (default: {GOLDEN_DIR})")


def pytest_configure(config: pytest.Config) -> None:
    folder = config.getoption("--rdplab-scenarios")
    if folder:
        path = Path(folder).resolve()
        if not path.is_dir():
            raise pytest.UsageError(f"--rdplab-scenarios {folder}: no such folder")
        if not any(Path(a.split("::")[0]).resolve() == path for a in config.args):
            config.args.append(str(path))


def _backend(config: pytest.Config) -> str:
    return registry.resolve(config.getoption("--rdplab-backend"))


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def _rdp_key_pool() -> Iterator[KeyPool]:
    with KeyPool(4) as pool:
        yield pool


@pytest.fixture
def rdp_lab_factory(request: pytest.FixtureRequest, _rdp_key_pool: KeyPool) -> Iterator[LabFactory]:
    """Make labs: `rdp_lab_factory(lab=None, backend=None, **kw)`; all torn down after the test."""
    made: list[RdpLab] = []
    config = request.config

    def make(lab: str | Path | None = None, backend: str | None = None, **kw: Any) -> RdpLab:
        spec = load_lab(lab or config.getoption("--rdplab-lab"))
        kw.setdefault("profile", config.getoption("--rdplab-profile"))
        rdp = RdpLab(spec, backend or _backend(config), **kw)
        made.append(rdp)
        return rdp

    try:
        yield make
    finally:
        errors = []
        for rdp in reversed(made):
            try:
                rdp.close()
            except Exception as exc:  # close every lab, then report
                errors.append(exc)
        if errors:
            raise errors[0]


@pytest.fixture
def rdp_lab(rdp_lab_factory: LabFactory) -> RdpLab:
    """A fresh lab (--rdplab-lab on --rdplab-backend), torn down after the test."""
    return rdp_lab_factory()


# -- matrix cells as items ---------------------------------------------------------------------


def _scenario_folder(config: pytest.Config, folder: Path) -> bool:
    given = config.getoption("--rdplab-scenarios")
    if given and Path(given).resolve() == folder.resolve():
        return True
    return folder.name == "scenarios" and (folder / "remediations").is_dir()


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    if file_path.suffix == ".yaml" and _scenario_folder(parent.config, file_path.parent):
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


class CellOutcomeChanged(Exception):
    """The cell's outcome differs from the pinned matrix."""


class CellLabError(Exception):
    pass


class CellItem(pytest.Item):
    def __init__(self, *, fault: str, remediation: str, **kw: Any) -> None:
        super().__init__(**kw)
        self.fault, self.remediation = fault, remediation

    def runtest(self) -> None:
        from .matrix.cell import CellOptions, run_cell

        config = self.config
        spec = load_lab(config.getoption("--rdplab-lab"))
        backend = _backend(config)
        opts = CellOptions(lab=str(spec.path), backend=backend, scenarios=str(self.path.parent),
                           profile=config.getoption("--rdplab-profile"))
        with KeyPool(2):
            result = run_cell(opts, self.fault, self.remediation)
        self.user_properties += [("outcome", result.outcome), ("backend", result.backend),
                                 ("reason", result.reason)]
        golden_dir = config.getoption("--rdplab-golden")
        golden_dir = Path(golden_dir) if golden_dir else None
        pinned = None
        if not config.getoption("--rdplab-profile"):  # pins hold the lab's own profile
            pinned = pinned_outcome(load_golden(spec.name, result.backend, golden_dir),
                                    self.fault, self.remediation)
        if pinned is not None and pinned != result.outcome:
            raise CellOutcomeChanged(
                f"{self.fault} × {self.remediation}: pinned {pinned}, ran {result.outcome}: "
                f"{result.reason}\npinned in {golden_path(spec.name, result.backend, golden_dir)}"
                f"; if the change is deliberate, run `{UPDATE_COMMAND}` and commit the golden "
                "files with the reason")
        if result.outcome == "not-emulated":
            pytest.skip(f"not emulated: {result.reason}")
        if result.outcome == "lab-error" and pinned is None:
            raise CellLabError(result.reason)
        self.add_report_section("call", "outcome", f"{result.outcome}: {result.reason}")

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style=None) -> str:  # type: ignore[no-untyped-def, override]
        if isinstance(excinfo.value, CellLabError):
            return f"lab error: {excinfo.value}"
        if isinstance(excinfo.value, CellOutcomeChanged):
            return f"outcome changed: {excinfo.value}"
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"{self.fault} × {self.remediation}"
