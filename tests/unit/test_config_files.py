"""Every config file is checked one way (JSON Schema through scenario/schema.py) and a bad one
names file, line and field: client profiles, OS profiles, host configs, labs, faults (with each
action's arguments) and remediation sidecars."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.cli import main
from harness.errors import ConfigError, HostConfigError, ProfileError
from harness.host.config import load_host_config
from harness.lab.definition import load_lab
from harness.probe.profiles import PROFILE_DIR, load_profile
from harness.scenario.actions import args_schema
from harness.scenario.catalog import load_catalog
from harness.scenario.schema import KINDS, load_checked, schema_of
from harness.scenario.source import ScenarioFileError
from harness.windows import os_profiles

REPO = Path(__file__).resolve().parents[2]
OS_DIR = os_profiles.DATA_DIR


def shipped() -> list[tuple[str, Path]]:
    files = [("client-profile", p) for p in sorted(PROFILE_DIR.glob("*.yaml"))]
    files += [("os-profile", p) for p in sorted(OS_DIR.glob("windows-*.yaml"))]
    files += [("os-common", OS_DIR / "common.yaml")]
    files += [("lab", p) for p in sorted((REPO / "labs").glob("*.yaml"))]
    files += [("fault", p) for p in sorted((REPO / "scenarios").glob("*.yaml"))]
    files += [("remediation", p) for p in sorted((REPO / "scenarios" / "remediations")
                                                  .glob("*.yaml"))]
    return files


@pytest.mark.parametrize(("kind", "path"), shipped(), ids=lambda v: getattr(v, "name", v))
def test_every_shipped_file_passes_its_schema(kind: str, path: Path) -> None:
    assert load_checked(path, kind).data


def test_every_kind_has_a_schema() -> None:
    for kind in KINDS:
        assert schema_of(kind)["type"] == "object"


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_bad_client_profile_names_line_and_field(tmp_path: Path) -> None:
    path = _write(tmp_path, "mine.yaml", "name: mine\ninherits: mstsc-win11\nclient:\n"
                  "  tls_min: TLSv1.2\n  cert_policy: sometimes\n")
    with pytest.raises(ProfileError) as info:
        load_profile(str(path))
    assert str(info.value).startswith(f"{path}:5: field 'client.cert_policy': expected one of")
    path = _write(tmp_path, "typo.yaml", "name: typo\ninherits: mstsc-win11\nclient:\n"
                  "  requested_protocol: [SSL]\n")
    with pytest.raises(ProfileError, match=r"typo\.yaml:4: field 'client.requested_protocol': "
                       r"unknown; known fields: requested_protocols"):
        load_profile(str(path))
    path = _write(tmp_path, "orphan.yaml", "name: orphan\ninherits: mstsc-win12\n")
    with pytest.raises(ProfileError, match=r"orphan\.yaml:2: field 'inherits': no client "
                       r"profile 'mstsc-win12'"):
        load_profile(str(path))


def test_a_bad_os_profile_names_line_and_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                               ) -> None:
    folder = tmp_path / "os"
    shutil.copytree(OS_DIR, folder)
    text = (folder / "windows-11.yaml").read_text().replace("kind: client", "kind: laptop")
    (folder / "windows-11.yaml").write_text(text)
    line = text.splitlines().index("kind: laptop") + 1
    monkeypatch.setattr(os_profiles, "DATA_DIR", folder)
    os_profiles.load_profile.cache_clear()
    os_profiles._common.cache_clear()
    try:
        with pytest.raises(ProfileError, match=rf"windows-11\.yaml:{line}: field 'kind': "
                           r"expected client or server, got 'laptop'"):
            os_profiles.load_profile("windows-11")
    finally:
        os_profiles.load_profile.cache_clear()
        os_profiles._common.cache_clear()


def test_a_bad_host_config_names_line_and_field(tmp_path: Path) -> None:
    path = _write(tmp_path, "host.yaml", "domain: LAB\ncredssp_version: 9\n")
    with pytest.raises(HostConfigError, match=r"host\.yaml:2: field 'credssp_version': "
                       r"expected a CredSSP \(TSRequest\) version from 2 to 6, got 9"):
        load_host_config(path)
    assert load_host_config(_write(tmp_path, "empty.yaml", "# nothing set\n")) == {}


def test_a_bad_lab_names_line_and_field(tmp_path: Path) -> None:
    text = (REPO / "labs" / "direct.yaml").read_text()
    path = _write(tmp_path, "lab.yaml", text + "vpn_mtuu: 1300\n")
    with pytest.raises(ConfigError, match=rf"lab\.yaml:{len(text.splitlines()) + 1}: "
                       r"field 'vpn_mtuu': unknown"):
        load_lab(path)


def _scenarios(tmp_path: Path, old: str, new: str) -> tuple[Path, int]:
    folder = tmp_path / "scenarios"
    shutil.copytree(REPO / "scenarios", folder)
    fault = folder / "expired-cert.yaml"
    text = fault.read_text()
    assert old in text
    fault.write_text(text.replace(old, new))
    line = next(i for i, t in enumerate(fault.read_text().splitlines(), 1) if new in t)
    return folder, line


@pytest.mark.parametrize(("new", "field", "message"), [
    ("{days_agoo: 30}", "days_agoo", "unknown; known fields: days_ago"),
    ("{days_ago: soon}", "days_ago", "expected an integer, got 'soon'"),
])
def test_a_bad_fault_argument_stops_the_run_before_any_cell(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], new: str, field: str,
        message: str) -> None:
    folder, line = _scenarios(tmp_path, "{days_ago: 30}", new)
    where = f"{folder / 'expired-cert.yaml'}:{line}: field 'inject.0.args.{field}': {message}"
    with pytest.raises(ConfigError) as info:
        load_catalog(folder)
    assert str(info.value) == where
    status = main(["matrix", "--backend", "loopback", "--scenarios", str(folder),
                   "--journals", str(tmp_path / "journals")])
    err = capsys.readouterr().err
    assert status == 2 and where in err and "nothing was run" in err
    assert not (tmp_path / "journals").exists()


def test_a_missing_argument_and_an_unknown_profile_are_named(tmp_path: Path) -> None:
    folder, line = _scenarios(tmp_path, "action: expire_rdp_certificate, args: {days_ago: 30}",
                              "action: set_clock_offset, args: {}")
    with pytest.raises(ConfigError, match=rf":{line}: field 'inject.0.args.seconds': is missing"):
        load_catalog(folder)
    folder, line = _scenarios(tmp_path / "b", "{node: host, action: expire_rdp_certificate, "
                              "args: {days_ago: 30}}", "{node: client, action: "
                              "use_client_program, args: {profile: mstsc-win99}}")
    with pytest.raises(ConfigError, match=rf":{line}: field 'inject.0.args.profile': no client "
                       r"profile 'mstsc-win99'"):
        load_catalog(folder)


def test_action_argument_schemas_come_from_the_actions_themselves() -> None:
    assert args_schema("host", "expire_rdp_certificate") == {
        "type": "object", "properties": {"days_ago": {"type": "integer"}}, "required": [],
        "additionalProperties": False}
    schema = args_schema("client", "set_hosts_entry")
    assert schema["required"] == ["name", "address"]
    assert schema["properties"]["address"] == {"type": ["string", "null"]}
    assert args_schema("network", "mtu_blackhole")["properties"]["mtu"]["maximum"] == 9000


@pytest.fixture
def scenarios(tmp_path: Path) -> Path:
    """A private copy of scenarios/ that a test may change."""
    target = tmp_path / "scenarios"
    shutil.copytree(REPO / "scenarios", target)
    return target


@pytest.mark.parametrize(("text", "line", "field"), [
    ("id: x\ntitle: [unclosed\n", 3, None),
    ("id: bad-action\ntitle: A title\ndescription: d\n"
     "claim: {text: t, codes: {}, sources: [s]}\n"
     "inject:\n  - {node: host, action: make_it_fail}\n"
     "expected: {mstsc-win11: {symptom: none, provenance: doc}}\ntags: []\n", 6, "inject.0.action"),
    ("id: missing\ntitle: A title\ndescription: d\n"
     "claim: {text: t, codes: {}, sources: [s]}\n"
     "inject:\n  - {node: host, action: stop_service}\ntags: []\n", 1, "expected"),
    ("id: extra\ntitle: A title\ndescription: d\n"
     "claim: {text: t, codes: {}, sources: [s]}\n"
     "inject:\n  - {node: host, action: stop_service, colour: red}\n"
     "expected: {mstsc-win11: {symptom: none, provenance: doc}}\ntags: []\n", 6,
     "inject.0.colour"),
    ("id: badprof\ntitle: A title\ndescription: d\n"
     "claim: {text: t, codes: {}, sources: [s]}\n"
     "inject:\n  - {node: host, action: stop_service}\n"
     "expected:\n  mstsc-xp: {symptom: none, provenance: doc}\ntags: []\n", 8, "expected.mstsc-xp"),
])
def test_bad_fault_files_name_file_line_and_field(scenarios: Path, text: str, line: int,
                                                  field: str | None) -> None:
    name = text.split("\n", 1)[0].split(": ", 1)[1]
    path = scenarios / f"{name}.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioFileError) as info:
        load_catalog(scenarios)
    err = info.value
    assert err.path == path
    assert err.line == line, str(err)
    assert err.field == field, str(err)


def test_bad_sidecar_is_located(scenarios: Path) -> None:
    sidecar = scenarios / "remediations" / "disable-nla.yaml"
    sidecar.write_text(sidecar.read_text().replace("security_impact: weakens",
                                                   "security_impact: maybe"))
    with pytest.raises(ScenarioFileError) as info:
        load_catalog(scenarios)
    assert info.value.field == "security_impact" and info.value.line
