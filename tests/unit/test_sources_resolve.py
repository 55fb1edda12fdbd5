"""Every citation in the data files resolves: `rdp-facts §N` names a section of
docs/rdp-facts.md, and every other source names a public document precisely (a specification,
RFC or KB number, a quoted title, an address) or a file of this repository."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
FACTS = REPO / "docs" / "rdp-facts.md"
CITATION = re.compile(r"rdp-facts(?:\.md)?\s*§\s*(\d+)((?:\s*,\s*§?\s*\d+)*)")
PRECISE = re.compile(
    r"rdp-facts §\d+"  # the project's own facts
    r"|\[?MS-[A-Z]{3,}\]?"  # Microsoft Open Specifications
    r"|\bRFC \d+|\bKB\d{6,7}\b|CVE-\d{4}-\d+"
    r"|'[^']{4,}'|\"[^\"]{4,}\"|‘[^’]{4,}’"  # a quoted title
    r"|https?://\S+"
    r"|\b[\w./-]+\.(?:py|c|h|yaml|md)\b"  # a source file (this repository's or FreeRDP's)
    r"|^run\b"  # observed by this repository's tests
    r"|^(?:no source|assumed)\b")  # an admitted absence (the row's confidence is open)


def _sections() -> set[int]:
    return {int(m) for m in re.findall(r"^## (\d+)\.", FACTS.read_text(), re.M)}


def _data_files() -> list[Path]:
    return sorted([*REPO.glob("scenarios/*.yaml"), *REPO.glob("scenarios/remediations/*.yaml"),
                   *REPO.glob("harness/data/**/*.yaml"), *REPO.glob("labs/*.yaml"),
                   REPO / "README.md"])


def _sources(path: Path) -> list[str]:
    """The source fields: a fault's claim.sources, a sidecar's source, a profile row's source."""
    if path.suffix != ".yaml":
        return []
    data: Any = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        return []
    out: list[str] = []
    if isinstance(data.get("claim"), dict):
        out += [str(s) for s in data["claim"].get("sources", [])]
    if "source" in data and path.parent.name == "remediations":
        src = data["source"]
        out += [str(s) for s in (src if isinstance(src, list) else [src])]
    for row in data.get("codes", []) if isinstance(data.get("codes"), list) else []:
        if isinstance(row, dict) and "source" in row:
            out.append(str(row["source"]))
    return out


@pytest.mark.parametrize("path", _data_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_rdp_facts_citation_names_an_existing_section(path: Path) -> None:
    sections = _sections()
    text = path.read_text()
    for match in CITATION.finditer(text):
        cited = [int(match.group(1))] + [int(n) for n in re.findall(r"\d+", match.group(2))]
        missing = [n for n in cited if n not in sections]
        assert not missing, f"{path.name}: '{match.group(0)}' cites missing §{missing}"
    assert "rdp-facts.md section" not in text, f"{path.name}: cite as 'rdp-facts §N'"


@pytest.mark.parametrize("path", [p for p in _data_files() if _sources(p)],
                         ids=lambda p: str(p.relative_to(REPO)))
def test_every_other_source_names_a_public_document_precisely(path: Path) -> None:
    vague = [s for s in _sources(path) if not PRECISE.search(s)]
    assert not vague, f"{path.name}: sources that name no document precisely: {vague}"
