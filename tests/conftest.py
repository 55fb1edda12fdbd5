"""Shared fixtures: lab PKI material, an Xvfb display, and skips for missing real peers."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from harness.pki import KeyPair, expired_window, issue_server_cert, make_ca

# A test run started in the background by a non-interactive shell (`cmd &`, as some CI runners
# do) inherits SIGINT ignored, and so would every program the tests start: the tests that press
# Ctrl-C on a child would then see it ignored. The tests' processes take the default back.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


# Property tests: the suite (and so CI) replays the same examples every run, with no time limit
# per example, so a run's result depends on the code alone, not on a random draw or the
# machine's load. HYPOTHESIS_PROFILE=explore draws new examples (the fuzz targets in
# tests/fuzz/ are the long exploration).
settings.register_profile("suite", derandomize=True, database=None, deadline=None)
settings.register_profile("explore", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "suite"))


@pytest.fixture(scope="session")
def lab_ca() -> KeyPair:
    return make_ca("rdplab test CA")


@pytest.fixture(scope="session")
def host_pair(lab_ca: KeyPair) -> KeyPair:
    return issue_server_cert(lab_ca, "localhost", names=["localhost", "127.0.0.1"])


@pytest.fixture(scope="session")
def expired_pair(lab_ca: KeyPair) -> KeyPair:
    start, end = expired_window()
    return issue_server_cert(lab_ca, "localhost", names=["localhost", "127.0.0.1"],
                             not_before=start, not_after=end)


@pytest.fixture(scope="session")
def other_pair(lab_ca: KeyPair) -> KeyPair:
    return issue_server_cert(lab_ca, "localhost", names=["localhost"])


@pytest.fixture
def cert_files(tmp_path: Path, host_pair: KeyPair, lab_ca: KeyPair) -> dict[str, Path]:
    files = {"cert": tmp_path / "rdp.crt", "key": tmp_path / "rdp.key", "ca": tmp_path / "ca.crt"}
    files["cert"].write_bytes(host_pair.cert_pem)
    files["key"].write_bytes(host_pair.key_pem)
    files["ca"].write_bytes(lab_ca.cert_pem)
    return files


@pytest.fixture(scope="session", autouse=True)
def private_state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Each test process records its labs in its own state directory (RDPLAB_STATE_DIR, which
    the CLI subprocesses inherit): a test's `rdplab down --all --force` or `down_all()` then
    sweeps only what this process made, never a lab another xdist worker is still using. Its
    cache (matrix durations) is private too: nothing is written to the user's home."""
    from harness.net.state import STATE_ENV

    folder = tmp_path_factory.mktemp("rdplab-state")
    cache = tmp_path_factory.mktemp("rdplab-cache")  # matrix durations (matrix/durations.py)
    saved = {k: os.environ.get(k) for k in (STATE_ENV, "XDG_CACHE_HOME")}
    os.environ[STATE_ENV] = str(folder)
    os.environ["XDG_CACHE_HOME"] = str(cache)
    try:
        yield folder
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _need(binary: str, package: str) -> None:
    if shutil.which(binary) is None:
        pytest.skip(f"{binary} is not installed (Debian package {package}); "
                    "the README's test command installs it when run as root")


@pytest.fixture(scope="session")
def xdisplay() -> Iterator[str]:
    """A private Xvfb display for xfreerdp / freerdp-shadow-cli."""
    _need("Xvfb", "xvfb")
    from harness.xdisplay import Xvfb

    with Xvfb() as x:
        assert x.display
        yield x.display


@pytest.fixture(scope="session")
def xfreerdp() -> str:
    _need("xfreerdp", "freerdp2-x11")
    return shutil.which("xfreerdp") or ""


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


_TIERS = ("unit", "integration", "system")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test with its tier (the folder it lives in), so `-m unit` is the inner loop."""
    for item in items:
        parts = Path(str(item.fspath)).parts
        for tier in _TIERS:
            if tier in parts:
                item.add_marker(getattr(pytest.mark, tier))
                break
