"""The interactive prompt of `rdplab shell`: readline history and tab completion of cmdlets;
each line goes to a runner (the lab's model through its supervisor, or WinRM on a Vagrant VM)
and its output is printed."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TextIO


@dataclass
class LineResult:
    output: list[str]
    error: str | None = None


class Runner(Protocol):
    def run_line(self, line: str) -> LineResult: ...


class SupervisorRunner:
    """Lines run by the lab's supervisor on the model (the remediation scripts' interpreter)."""

    def __init__(self, call: Callable[..., dict[str, Any]], node: str) -> None:
        self._call, self.node = call, node

    def run_line(self, line: str) -> LineResult:
        reply = self._call("shell", node=self.node, line=line)
        return LineResult(list(reply["output"]), reply.get("error"))


class WinRMLineRunner:
    """Lines run for real on a Vagrant VM, each through the lab's WinRM runner
    (harness/lab/winrm_runner.py: pywinrm, deadlines, CLIXML errors decoded)."""

    def __init__(self, runner: Any, timeout: float = 120.0) -> None:
        self.runner, self.timeout = runner, timeout

    def run_line(self, line: str) -> LineResult:
        result = self.runner.run_ps(line, self.timeout, what="shell")
        error = result.error or (result.stderr.strip() or None)
        if error is None and result.timed_out:
            error = f"no answer within {self.timeout:g} s"
        if error is None and result.exit_code:
            error = f"exit status {result.exit_code}"
        return LineResult(result.stdout.splitlines(), error)


def completer(words: Sequence[str]) -> Callable[[str, int], str | None]:
    """readline completer over command names (case-insensitive, first word of a line)."""
    def complete(text: str, state: int) -> str | None:
        matches = [w for w in words if w.lower().startswith(text.lower())]
        return matches[state] if state < len(matches) else None
    return complete


def _setup_readline(words: Sequence[str], history: Path | None) -> Any:
    try:
        import readline
    except ImportError:  # no readline: a plain prompt still works
        return None
    readline.set_completer(completer(words))
    readline.set_completer_delims(" \t\n;|(")
    readline.parse_and_bind("tab: complete")
    if history is not None:
        with contextlib.suppress(OSError):
            readline.read_history_file(str(history))
    return readline


def run_repl(runner: Runner, prompt: str, words: Sequence[str], history: Path | None = None,
             stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    """Read lines until `exit` or end of input; print each line's output or error."""
    out = stdout or sys.stdout
    rl = _setup_readline(words, history) if stdin is None else None
    print("Type PowerShell or cmd commands; `exit` leaves. Tab completes command names.",
          file=out)
    try:
        while True:
            try:
                if stdin is None:
                    line = input(prompt)
                else:
                    out.write(prompt)
                    out.flush()
                    line = stdin.readline()
                    if not line:
                        raise EOFError
                    line = line.rstrip("\n")
            except EOFError:
                print(file=out)
                return 0
            except KeyboardInterrupt:
                print("^C", file=out)
                continue
            if line.strip().lower() in ("exit", "quit", "exit-pssession"):
                return 0
            if not line.strip():
                continue
            result = runner.run_line(line)
            for text in result.output:
                print(text, file=out)
            if result.error:
                print(result.error, file=out)
            out.flush()
    finally:
        if rl is not None and history is not None:
            with contextlib.suppress(OSError):
                rl.write_history_file(str(history))
