"""`pytest scenarios/` runs the fix matrix: one test per fault × remediation (see
harness/pytest_plugin.py). Installed, the package loads the plugin itself (entry point
`pytest11: rdplab`); from a source tree without the entry point, this loads it."""

from importlib.metadata import entry_points

if not any(ep.value == "harness.pytest_plugin" for ep in entry_points(group="pytest11")):
    pytest_plugins = ["harness.pytest_plugin"]
