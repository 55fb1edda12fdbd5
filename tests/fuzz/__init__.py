"""Fuzzing every parser the lab exposes to a peer or a user (issue 10).

- `targets.py`: one target per parser, bytes in; a target may raise only the parser's typed
  errors (RdpError, PwshError, YAMLError/config errors); anything else is a crash.
- `corpus/<target>/`: seeds cut from real exchanges (a probe against the emulated host in memory,
  the gateway's HTTP and WebSocket framing, the shipped scenario/lab/remediation files), made by
  `python -m tests.fuzz --seed`.
- Short run: tests/unit/test_fuzz_short.py replays the corpus and a few hundred mutations per
  target (seconds, no atheris needed).
- Long run (atheris, the `fuzz` extra): `python -m tests.fuzz --target NAME --seconds N`, or
  `--target all` for every target one after another; it prints inputs per target and crashes.
"""
