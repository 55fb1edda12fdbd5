"""The training commands' errors: bad input (exit 2) and a lab that fails (exit 1)."""

from __future__ import annotations

EXIT_USAGE = 2
EXIT_FAILED = 1


class TrainingError(Exception):
    """Bad input or a lab in the wrong state: a clear message and exit 2, nothing changed."""

    exit_code = EXIT_USAGE


class LabBusy(TrainingError):
    """Another command holds the lab's lock."""


class LabFailed(Exception):
    """The lab itself failed (the supervisor died, did not start): exit 1."""

    exit_code = EXIT_FAILED
