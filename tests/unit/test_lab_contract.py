"""The lab contract, the backend registry, the errors module and the model's snapshots (no
sockets: a backend here carries no traffic; the matrix tests run real ones)."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from harness import errors
from harness.lab import registry
from harness.lab.base import Lab
from harness.lab.contract import LabBackend, StepEffect
from harness.lab.definition import load_lab
from harness.lab.factory import LabHandle
from harness.pki import KeyPool
from harness.scenario.actions import apply_step

REPO = Path(__file__).resolve().parents[2]


class ModelOnlyLab(Lab):
    """A backend with no network at all: enough for the contract's non-network parts."""

    backend = "model-only"

    @classmethod
    def max_concurrent_labs(cls, spec: Any) -> int | None:
        return 3

    def start(self) -> None:
        self.started = True

    def sync(self) -> None:
        self.synced = getattr(self, "synced", 0) + 1

    def connect(self, address: str, port: int, timeout: float) -> Any:
        raise errors.NotEmulated("no network in this backend")

    def close(self) -> None:
        self.started = False


@pytest.fixture
def model_only(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setitem(registry.BACKENDS, "model-only", f"{__name__}:ModelOnlyLab")
    return "model-only"


@pytest.fixture(scope="module", autouse=True)
def key_pool():
    with KeyPool(3) as pool:
        yield pool


def test_the_registry_names_every_backend_and_a_new_one_needs_only_a_line(
        model_only: str) -> None:
    assert {"loopback", "netns", "vagrant", model_only} <= set(registry.names())
    assert registry.choices()[0] == "auto"
    assert registry.backend_class(model_only) is ModelOnlyLab
    assert registry.resolve("loopback") == "loopback"
    with pytest.raises(ValueError, match="unknown backend 'nope'"):
        registry.resolve("nope")


def test_auto_takes_the_first_backend_that_can_run(monkeypatch: pytest.MonkeyPatch,
                                                   model_only: str) -> None:
    monkeypatch.setattr(ModelOnlyLab, "availability", classmethod(lambda cls: "no reason"))
    monkeypatch.setattr(registry, "AUTO_ORDER", [model_only, "loopback"])
    assert registry.resolve("auto") == "loopback"
    assert "model-only backend not available (no reason)" in (
        registry.auto_fallback_note("auto", "loopback") or "")
    monkeypatch.setattr(ModelOnlyLab, "availability", classmethod(lambda cls: None))
    assert registry.resolve("auto") == model_only
    monkeypatch.setattr(registry, "AUTO_ORDER", [model_only])
    monkeypatch.setattr(ModelOnlyLab, "availability", classmethod(lambda cls: "gone"))
    with pytest.raises(errors.BackendUnavailable, match="gone"):
        registry.resolve("auto")


def test_preflight_and_concurrency_come_from_the_class(model_only: str) -> None:
    spec = load_lab("direct")
    cls = registry.backend_class(model_only)
    cls.preflight(spec)  # available: nothing raised
    assert cls.max_concurrent_labs(spec) == 3
    assert cls.default_jobs(2) == 2
    assert registry.backend_class("netns").default_jobs(2) == 16
    assert registry.backend_class("loopback").default_jobs(2) == 6
    vagrant = registry.backend_class("vagrant")
    assert vagrant.max_concurrent_labs(spec) == 1 and vagrant.default_jobs(8) == 1


def test_an_incomplete_backend_cannot_be_built() -> None:
    class Half(LabBackend):
        backend = "half"

        def start(self) -> None: ...

    with pytest.raises(TypeError, match="abstract"):
        Half(load_lab("direct"), Path("."), {})  # type: ignore[abstract]


def test_a_lab_is_a_context_manager_that_closes_after_a_failed_start(tmp_path: Path) -> None:
    closed: list[bool] = []

    class Broken(ModelOnlyLab):
        def start(self) -> None:
            raise RuntimeError("no")

        def close(self) -> None:
            closed.append(True)

    with pytest.raises(RuntimeError):  # noqa: SIM117
        with Broken(load_lab("direct"), tmp_path, {}):
            pass
    assert closed == [True]


def test_a_step_returns_its_effect_and_changes_only_the_model(model_only: str) -> None:
    with LabHandle(load_lab("direct"), model_only) as lab:
        before = dict(vars(lab))
        effect = apply_step(lab, {"node": "client", "action": "use_client_program",
                                  "args": {"profile": "freerdp2"}})
        assert effect == StepEffect("client: the user now connects with freerdp2", "freerdp2")
        assert vars(lab) == before  # nothing left on the lab object itself
        assert lab.client_program == lab.nodes["client"].client_program == "freerdp2"
        effect = apply_step(lab, {"node": "host", "action": "stop_service",
                                  "args": {"name": "TermService"}})
        assert effect.client_program is None and "stop_service" in effect.line
        assert not lab.nodes["host"].services.is_running("TermService")


def test_a_snapshot_brings_back_the_model_and_its_files(model_only: str) -> None:
    with LabHandle(load_lab("direct"), model_only) as lab:
        host = lab.nodes["host"]
        cert = host.certstore.rdp_certificate()
        snap = lab.snapshot("direct/before")
        entries = len(host.journal.entries)
        files = sorted(p for p in lab.workdir.rglob("*") if p.is_file())
        lab.inject("host", "stop_service", {"name": "TermService"})
        lab.inject("host", "corrupt_rdp_key", {})
        lab.inject("client", "set_clock_offset", {"seconds": 86400 * 3})
        (lab.workdir / "stray").write_text("left by a script")
        lab.restore(snap)
        host = lab.nodes["host"]
        assert host.services.is_running("TermService")
        assert len(host.journal.entries) == entries
        assert lab.nodes["client"].client_settings().clock_offset == 0
        assert host.certstore.rdp_certificate().thumbprint == cert.thumbprint
        assert host.served_credential() is not None  # the key file is whole again
        assert sorted(p for p in lab.workdir.rglob("*") if p.is_file()) == files
        assert snap.describe()["restores"] == 1
        # A second restore starts from the same state (the snapshot is never the live copy).
        lab.inject("host", "stop_service", {"name": "TermService"})
        lab.restore(snap)
        assert lab.nodes["host"].services.is_running("TermService")
        frozen = snap.state["nodes"]
        assert frozen.pickled  # the fast path: the model pickles (certificates shared)
        one, two = frozen.thaw(), frozen.thaw()
        assert one["host"] is not two["host"] and one["host"].lock is not two["host"].lock
        assert one["host"].network is not lab.nodes["host"].network


def test_errors_live_in_one_module() -> None:
    from harness.lab import base, winrm_runner
    from harness.probe import profiles
    from harness.pwsh import errors as pwsh_errors
    from harness.scenario import source
    from harness.windows import faults, os_profiles

    assert base.NotEmulated is errors.NotEmulated
    assert winrm_runner.LabError is errors.LabError
    assert profiles.ProfileError is os_profiles.ProfileError is errors.ProfileError
    assert source.ScenarioFileError is errors.ConfigError
    assert faults.FaultError is errors.FaultError
    assert issubclass(pwsh_errors.NotEmulated, errors.NotEmulated)
    assert issubclass(pwsh_errors.NotEmulated, errors.PwshError)
    assert str(errors.ConfigError(Path("a.yaml"), 3, "days_ago", "expected an integer")) == \
        "a.yaml:3: field 'days_ago': expected an integer"


def test_no_caller_probes_a_lab_with_hasattr() -> None:
    """Everything a caller may ask of a lab is in the contract."""
    offenders = []
    for path in sorted((REPO / "harness").rglob("*.py")):
        if path.parts[-2] == "rdp":
            continue
        text = path.read_text()
        if "hasattr" not in text:
            continue
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "hasattr":
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert offenders == []


def test_a_file_tree_comes_back_whatever_was_done_to_it(tmp_path: Path) -> None:
    from harness.lab.modelstate import FileTree

    root = tmp_path / "lab"
    (root / "nodes" / "HOST" / "keys").mkdir(parents=True)
    (root / "nodes" / "HOST" / "keys" / "rdp.key").write_bytes(b"key")
    (root / "ca.crt").write_bytes(b"ca")
    (root / "kdc").mkdir()
    tree = FileTree(root, frozenset({"kdc"}))
    before = {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    (root / "nodes" / "HOST" / "keys" / "rdp.key").write_bytes(b"corrupted!")
    (root / "nodes" / "HOST" / "keys" / "new.key").write_bytes(b"renewed")
    (root / "nodes" / "HOST" / "extra" / "deep").mkdir(parents=True)
    (root / "ca.crt").unlink()
    (root / "ca.crt").mkdir()
    (root / "kdc" / "principal").write_bytes(b"the KDC's own")
    for _ in range(2):  # twice: the second time from the state the first restore recorded
        tree.restore()
        after = {p.relative_to(root): p.read_bytes() for p in root.rglob("*")
                 if p.is_file() and "kdc" not in p.parts}
        assert after == before
        assert sorted(p.name for p in (root / "nodes" / "HOST").iterdir()) == ["keys"]
        assert (root / "kdc" / "principal").read_bytes() == b"the KDC's own"
        (root / "nodes" / "HOST" / "keys" / "rdp.key").write_bytes(b"again")
