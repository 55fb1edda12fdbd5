"""`pytest scenarios/` runs the fix matrix: one test per fault × remediation (see
harness/matrix/pytest_plugin.py)."""

pytest_plugins = ["harness.matrix.pytest_plugin"]
