"""The PowerShell parser against hostile scripts (issue 10): every input ends, quickly, in a
Script or a typed PwshError naming file and line; never a hang, a crash or a RecursionError."""

from __future__ import annotations

import time

import pytest

from harness.pwsh.errors import PwshError, ScriptError
from harness.pwsh.parser import MAX_DEPTH, number, parse
from harness.pwsh.syntax import Literal


@pytest.mark.parametrize("script", [
    "Restart-Service TermService `",  # a trailing backtick looped for ever (+55-80 MB/s)
    "Restart-Service `\nTermService `",
    "Set-ItemProperty -Path x -Name y -Value `",
])
def test_trailing_backtick_is_a_script_error(script: str) -> None:
    t0 = time.monotonic()
    with pytest.raises(ScriptError, match="escape character"):
        parse(script, "fix.ps1")
    assert time.monotonic() - t0 < 0.5


@pytest.mark.parametrize(("text", "value"), [("09", 9), ("01", 1), ("010", 10), ("-08", -8),
                                             ("0x1F", 31), ("08KB", 8192)])
def test_leading_zeros_are_decimal_as_in_powershell(text: str, value: int) -> None:
    assert number(text) == value
    script = parse(f"Set-ItemProperty -Path x -Name y -Value {text}")
    arg = script.statements[0].stages[0].args[-1]
    assert isinstance(arg, Literal) and arg.value == value


@pytest.mark.parametrize("script", [
    "Get-Item \u2003\u2003\u2003\u2003",  # em spaces: whitespace Python splits on, not PowerShell
    "$a = 1 \u2003\u2003\u2003",
    "Get-Item (1) \x1c\x1d\x1e\x1f\x85\u2028",
    "\u2003\u2003",
    "1 \u3000\u3000\u3000\u3000\u3000\u3000\u3000\u3000",
])
def test_unusual_whitespace_runs_end_in_a_typed_result(script: str) -> None:
    try:
        parse(script)
    except PwshError as exc:
        assert exc.line >= 1


@pytest.mark.parametrize("opener", ["(", "$(", "@("])
def test_deep_nesting_is_a_script_error_not_a_recursion_error(opener: str) -> None:
    script = "Get-Item " + opener * 500 + "1" + ")" * 500
    with pytest.raises(ScriptError, match=f"nested deeper than {MAX_DEPTH}"):
        parse(script, "deep.ps1")


def test_nesting_within_the_limit_parses() -> None:
    parse("Get-Item " + "(" * 20 + "1" + ")" * 20)


def test_parsing_is_linear() -> None:
    def seconds(n: int) -> float:  # CPU time of this process: other processes' load is not ours
        t0 = time.process_time()
        parse("Set-Item a" + ' "$x b"' * n)
        return time.process_time() - t0

    seconds(1000)
    small, big = min(seconds(2000) for _ in range(7)), min(seconds(16000) for _ in range(5))
    assert big < 24 * small, (small, big)  # 8x the input: ~8x the time (quadratic: 64x)


def test_oversize_script_is_refused() -> None:
    with pytest.raises(ScriptError, match="longer than"):
        parse("#" * (1 << 21))
