"""The HTML report in a real headless chromium (Debian package), driven over the DevTools
protocol: it loads with no console error and no request beyond its own file, the filters work,
a cell opens its evidence, and a screenshot is taken."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.cdp import Browser
from tests.system.test_ci_gate import rdplab

pytestmark = pytest.mark.xdist_group("chromium")


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("html")
    run = rdplab("matrix", "--lab", "direct", "--backend", "loopback", "--jobs", "2",
                 "--faults", "expired-cert,server-denied,corrupt-machinekeys",
                 "--remediations", "renew-rdp-certificate,reset-machinekeys-acl,"
                 "raise-connection-limit,disable-nla", "--json", out / "m.json",
                 "--html", out / "m.html")
    assert run.returncode == 0, run.stderr
    return out / "m.html"


@pytest.fixture
def browser() -> Browser:
    if shutil.which("chromium") is None:
        pytest.skip("chromium is not installed (Debian package chromium); the README's test "
                    "command installs it when run as root")
    with Browser() as b:
        b.open_page()
        yield b


def _select(b: Browser, which: str, value: str) -> str:
    b.evaluate(f"(() => {{ const s = document.getElementById('filter-{which}');"
               f" s.value = {value!r}; s.dispatchEvent(new Event('change')); }})()")
    return b.evaluate("document.getElementById('count').textContent")


def _visible_rows(b: Browser) -> list[str]:
    return b.evaluate("[...document.querySelectorAll('#heat-body tr')]"
                      ".filter(r => r.offsetParent !== null).map(r => r.dataset.fault)")


def test_the_report_loads_filters_and_opens_a_cells_evidence(report: Path, browser: Browser,
                                                              tmp_path: Path) -> None:
    text = report.read_text()
    assert "<link" not in text and 'src="' not in text  # nothing to fetch: inline only
    browser.navigate(report.as_uri())
    assert browser.evaluate("document.querySelectorAll('td.cell').length") == 12
    assert browser.errors() == []
    assert browser.requests() == [report.as_uri()]  # self-contained: nothing else is fetched

    cells = json.loads(report.with_suffix(".json").read_text())["cells"]
    fixed = sum(c["outcome"] == "fixed" for c in cells)
    assert 0 < fixed < 12
    assert _select(browser, "outcome", "fixed") == f"{fixed} matching cells"
    assert _select(browser, "outcome", "") == "12 matching cells"
    assert _select(browser, "fault", "server-denied") == "4 matching cells"
    assert _visible_rows(browser) == ["server-denied"]
    _select(browser, "fault", "")
    assert _select(browser, "remediation", "disable-nla") == "3 matching cells"
    _select(browser, "remediation", "")
    assert _select(browser, "tag", "certificate") == "8 matching cells"
    assert sorted(_visible_rows(browser)) == ["corrupt-machinekeys", "expired-cert"]
    assert _select(browser, "tag", "keystore") == "4 matching cells"
    assert _visible_rows(browser) == ["corrupt-machinekeys"]
    _select(browser, "tag", "")

    browser.click("td.cell[data-fault='corrupt-machinekeys'][data-rem='reset-machinekeys-acl']")
    assert browser.evaluate("document.getElementById('evidence').open") is True
    shown = browser.evaluate("document.getElementById('evidence-body').innerText")
    for expected in ("corrupt-machinekeys × reset-machinekeys-acl: fixed",
                     "before the remediation", "after the remediation", "icacls",
                     "model changes", "node events", "codes each client shows", "mstsc-win11",
                     "freerdp2", "stages of the cell"):
        assert expected in shown, expected
    shot = browser.screenshot(tmp_path / "report.png")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    assert browser.errors() == []
