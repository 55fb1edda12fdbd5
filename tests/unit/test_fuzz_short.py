"""The short fuzz run (issue 10): every target replays its corpus (seeds from real exchanges)
and a fixed set of mutations of it; only the parser's typed errors may escape, and no input may
take long. The long, coverage-guided run is `python -m tests.fuzz` (see tests/fuzz/)."""

from __future__ import annotations

import random
import time

import pytest

from tests.fuzz.mutate import mutate
from tests.fuzz.targets import TARGETS, check, corpus

MUTATIONS = 150
SLOW = 1.0  # seconds one input may take in the short run


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_target_survives_its_corpus_and_mutations(name: str) -> None:
    target = TARGETS[name]
    seeds = corpus(name)
    assert seeds, f"no corpus for {name}: run python -m tests.fuzz --seed"
    rng = random.Random(f"short-{name}")
    inputs = seeds + [mutate(rng.choice(seeds), rng) for _ in range(MUTATIONS)]
    for data in inputs:
        t0 = time.process_time()  # this process's CPU: a loaded machine does not fail it
        check(target, data)
        took = time.process_time() - t0
        assert took < SLOW, f"{name}: one input took {took:.2f} s: {data[:80]!r}"


def test_every_parser_family_has_a_target() -> None:
    families = {"ber", "tsrequest", "ntlm_challenge", "ntlm_authenticate", "x224", "mcs_gcc",
                "slow_path", "frames", "tsgu_packets", "http", "websocket", "pwsh", "yaml",
                "host_config", "spnego", "rdpsec"}
    assert families <= set(TARGETS)
