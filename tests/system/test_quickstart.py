"""The README's two commands on a Debian system Python (PEP 668: no pip into it) in a clean
setting: a copy of the tree, a bare environment, a fresh virtual environment that installs
everything from PyPI. And CI runs exactly the README's test command."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = Path("/usr/bin/python3")
IGNORE = shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.egg-info", ".ruff_cache",
                                ".pytest_cache", ".hypothesis", ".tox", "out", ".rdplab")

pytestmark = [pytest.mark.timeout(1800), pytest.mark.xdist_group("quickstart")]


def readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = text.split("## Quick start", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    return [line.split("#", 1)[0].strip() for line in block.strip().splitlines()]


def test_ci_runs_exactly_the_readme_test_command() -> None:
    first, test = readme_commands()
    assert first.startswith("bash scripts/quickstart.sh")
    assert test == "bash scripts/test.sh"
    ci = (REPO / ".ci" / "run").read_text()
    assert re.search(r"^exec bash scripts/test\.sh\s*$", ci, re.MULTILINE), ci


def test_quick_start_and_test_command_work_in_a_clean_setting(tmp_path: Path) -> None:
    if not SYSTEM_PYTHON.exists():
        pytest.skip("no Debian/Ubuntu system Python at /usr/bin/python3")
    tree = tmp_path / "rdplab"
    shutil.copytree(REPO, tree, ignore=IGNORE)
    home = tmp_path / "home"
    home.mkdir()
    env = {"PATH": "/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(home),
           "LANG": "C.UTF-8", "TMPDIR": str(tmp_path)}
    managed = list(Path("/usr/lib").glob("python3*/EXTERNALLY-MANAGED"))
    if managed:  # what the old `pip install -e .` ran into
        refused = subprocess.run([str(SYSTEM_PYTHON), "-m", "pip", "install", "-e", "."],
                                 cwd=tree, env=env, capture_output=True, text=True, timeout=120)
        assert refused.returncode != 0

    quick = subprocess.run(["bash", "scripts/quickstart.sh", "--lab", "direct", "--backend",
                            "loopback", "--faults", "expired-cert", "--remediations",
                            "renew-rdp-certificate,resync-clock"], cwd=tree, env=env,
                           capture_output=True, text=True, timeout=1200)
    out = quick.stdout + quick.stderr
    assert quick.returncode == 0, out[-3000:]
    assert "creating the virtual environment" in out and "Validated fix matrix" in out
    assert (tree / ".venv" / "bin" / "rdplab").exists()

    tests = subprocess.run(["bash", "scripts/test.sh", "tests/unit/test_ci_documents.py"],
                           cwd=tree, env=env, capture_output=True, text=True, timeout=1500)
    out = tests.stdout + tests.stderr
    assert tests.returncode == 0, out[-3000:]
    assert "== ruff" in out and "All checks passed" in out
    assert re.search(r"\d+ passed", out), out[-2000:]
