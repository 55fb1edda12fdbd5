"""`rdplab verify SCRIPT.ps1`: a script with no sidecar checked against a fault, as a CI job
checks a proposed fix: exit 0 fixed, 1 not (with the reason), 3 weakens security, 2 bad input."""

from __future__ import annotations

from pathlib import Path

from tests.system.test_ci_gate import REPO, rdplab


def verify(script: Path, *extra: str) -> tuple[int, str]:
    # the journals beside the script (in the test's folder): without --journals, verify keeps
    # them in a new temporary folder it names for the user, which a test would leave behind
    journals = [] if "--journals" in extra else ["--journals", str(script.parent / "journals")]
    run = rdplab("verify", script, "--lab", "direct", "--backend", "loopback", *journals,
                 *extra)
    return run.returncode, run.stdout + run.stderr


def test_a_fix_exits_0_and_a_non_fix_exits_1_with_the_reason(tmp_path: Path) -> None:
    script = tmp_path / "restart.ps1"
    script.write_text("# Restart the service (renews an expired certificate at start)\n"
                      "# node: host\nRestart-Service -Name TermService -Force\n")
    status, out = verify(script, "--fault", "expired-cert")
    assert status == 0, out
    assert "fixed: restart.ps1 against expired-cert" in out
    status, out = verify(script, "--fault", "server-denied")
    assert status == 1, out
    assert "not-fixed" in out and "still licensing/error_info:0x7" in out


def test_an_empty_script_does_not_fix_and_node_comes_from_the_option(tmp_path: Path) -> None:
    script = tmp_path / "nothing.ps1"
    script.write_text("Write-Host 'done'\n")
    status, out = verify(script, "--fault", "expired-cert")
    assert status == 2 and "--node" in out and "nothing was run" in out
    status, out = verify(script, "--fault", "expired-cert", "--node", "host")
    assert status == 1 and "still tls/cert_prompt:10" in out


def test_a_fix_that_weakens_security_exits_3(tmp_path: Path) -> None:
    script = tmp_path / "no-nla.ps1"
    script.write_text("# node: host\n# security-impact: weakens\n"
                      + (REPO / "scenarios" / "remediations" / "disable-nla.ps1").read_text())
    status, out = verify(script, "--fault", "nla-unsupported-client")
    assert status == 3, out
    assert "fixed-weakens-security" in out


def test_all_faults_prints_the_scripts_column(tmp_path: Path) -> None:
    script = tmp_path / "restart.ps1"
    script.write_text("# node: host\nRestart-Service -Name TermService -Force\n")
    status, out = verify(script, "--all-faults")
    assert status == 0, out
    assert "fixed: restart.ps1 against expired-cert" in out
    assert "not-fixed: restart.ps1 against server-denied" in out
    assert out.count("restart.ps1 against") >= 10


def test_bad_input_is_exit_2(tmp_path: Path) -> None:
    status, out = verify(tmp_path / "missing.ps1", "--fault", "expired-cert", "--node", "host")
    assert status == 2 and "no such file" in out
    script = tmp_path / "x.ps1"
    script.write_text("# node: printer\n")
    status, out = verify(script, "--fault", "expired-cert")
    assert status == 2 and "x.ps1:1: node 'printer'" in out
    script.write_text("# node: host\n")
    status, out = verify(script, "--fault", "no-such-fault")
    assert status == 2 and "not a fault of lab direct" in out
