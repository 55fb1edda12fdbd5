"""A scanner and recursive-descent parser for the PowerShell subset remediation scripts use.

Like PowerShell's own parser it reads characters in two modes: argument mode for command
arguments (bare words, -Parameters, quoted and expandable strings) and expression mode at the
start of a pipeline or after `=`. Every node carries its line. Syntax outside the subset (control
flow, script blocks, operators, here-strings) raises NotEmulated; malformed input ScriptError.
"""

from __future__ import annotations

import bisect
import re
from typing import Any

from .errors import ScriptError
from .errors import ScriptNotEmulated as NotEmulated
from .syntax import (
    ArrayExpr,
    Assignment,
    Command,
    Exit,
    ExprStage,
    Literal,
    Param,
    Pipeline,
    Script,
    SubExpr,
    Text,
    VarRef,
)

WS = " \t\f\v\u00a0"
DQ = "\"\u201c\u201d\u201e"  # PowerShell accepts typographic quotes pasted from web pages
SQ = "'\u2018\u2019\u201a\u201b"
DASHES = "-\u2013\u2014\u2015"
ENDS = "\n;|)}"
ESCAPES = {"0": "\0", "a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t",
           "v": "\v", "e": "\x1b"}
KEYWORDS = {"if", "elseif", "else", "foreach", "for", "while", "do", "until", "switch",
            "function", "filter", "workflow", "try", "catch", "finally", "trap", "throw",
            "return", "break", "continue", "begin", "process", "end", "class", "enum", "using",
            "data", "dynamicparam", "configuration"}
_VAR = re.compile(r"\$(?:\{([^}]+)\}|((?:(?:env|global|script|local|private|using|variable):)?"
                  r"[A-Za-z0-9_]+|\?|\^|\$))", re.IGNORECASE)
_NUMBER = re.compile(r"-?(?:0x[0-9a-fA-F]+|\d+)(?:[kmgtp]b)?", re.IGNORECASE)
_PARAM = re.compile(r"[-\u2013\u2014\u2015]([A-Za-z_?][A-Za-z0-9_?]*)(:?)")
_REDIRECT = re.compile(r"(?:[1-6*]?>>?)(?:&[12])?")
_MULTIPLIERS = {"kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30, "tb": 1 << 40, "pb": 1 << 50}
_ASSIGN = re.compile(_VAR.pattern + r"[ \t]*(\+|-|\*|/)?=(?!=)", re.IGNORECASE)
_PROP_ASSIGN = re.compile(_VAR.pattern + r"(\.[A-Za-z_]\w*|\[[^\]]*\])+[ \t]*=(?!=)",
                          re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z]+")
_PROP = re.compile(r"\.([A-Za-z_]\w*)")
_WORD_CHAR = re.compile(r"[\w.]")
MAX_DEPTH = 100  # nested ( ), $( ), @( ): PowerShell scripts from articles nest two or three
MAX_SCRIPT = 1 << 20  # characters in one script


def number(text: str) -> int | None:
    """An integer literal as PowerShell reads it (decimal, 0x hex, KB/MB suffixes)."""
    if not _NUMBER.fullmatch(text):
        return None
    scale = _MULTIPLIERS.get(text[-2:].lower(), 1)
    body = text[:-2] if scale != 1 else text
    negative = body.startswith("-")
    digits = body.lstrip("-")
    # PowerShell reads 09 and 010 as decimal (leading zeros are not octal)
    value = int(digits[2:], 16) if digits[:2].lower() == "0x" else int(digits, 10)
    return (-value if negative else value) * scale


class Parser:
    def __init__(self, text: str, file: str) -> None:
        self.src = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
        self.file = file
        self.pos = 0
        self.depth = 0
        if len(self.src) > MAX_SCRIPT:
            raise ScriptError(file, 1, f"the script is longer than {MAX_SCRIPT} characters")
        self._starts = [0] + [i + 1 for i, c in enumerate(self.src) if c == "\n"]

    # -- scanning helpers -----------------------------------------------------------------------

    @property
    def line(self) -> int:
        return bisect.bisect_right(self._starts, self.pos)

    def peek(self, k: int = 0) -> str:
        i = self.pos + k
        return self.src[i] if i < len(self.src) else ""

    def rest(self, n: int = 40) -> str:
        """The next `n` characters (for messages and short look-aheads; never the whole rest)."""
        return self.src[self.pos:self.pos + n]

    def at(self, pattern: re.Pattern[str]) -> re.Match[str] | None:
        """`pattern` matched at the current position (absolute offsets; linear time)."""
        return pattern.match(self.src, self.pos)

    def token_ahead(self, n: int = 12) -> str:
        """The next whitespace-delimited token, for messages; '?' when there is none."""
        words = self.rest(n).split()
        return words[0] if words else "?"

    def not_emulated(self, what: str, detail: str = "") -> NotEmulated:
        return NotEmulated(self.file, self.line, what, detail)

    def error(self, message: str) -> ScriptError:
        return ScriptError(self.file, self.line, message)

    def skip_space(self, newlines: bool = False) -> None:
        while True:
            c = self.peek()
            if c and c in WS:
                self.pos += 1
            elif c == "`" and self.peek(1) == "\n":
                self.pos += 2
            elif c == "<" and self.peek(1) == "#":
                end = self.src.find("#>", self.pos + 2)
                if end < 0:
                    raise self.error("Missing the end of a block comment ('#>').")
                self.pos = end + 2
            elif c == "#":
                end = self.src.find("\n", self.pos)
                self.pos = len(self.src) if end < 0 else end
            elif newlines and c and c in "\n;":
                self.pos += 1
            else:
                return

    def word_ahead(self) -> str:
        m = self.at(_WORD)
        return m.group(0) if m else ""

    # -- script and statements ------------------------------------------------------------------

    def parse_script(self) -> Script:
        self.skip_space(newlines=True)
        params: list[tuple[str, Any]] = []
        if self.word_ahead().lower() == "param":
            after = self.pos + 5
            while after < len(self.src) and self.src[after] in WS:
                after += 1
            if after < len(self.src) and self.src[after] == "(":
                self.pos = after + 1
                params = self.parse_param_block()
        return Script(params, self.parse_statements(None))

    def skip_attribute(self) -> None:
        depth = 0
        while True:
            c = self.peek()
            if not c:
                raise self.error("Missing closing ']'.")
            self.pos += 1
            depth += {"[": 1, "]": -1}.get(c, 0)
            if depth == 0:
                return

    def parse_param_block(self) -> list[tuple[str, Any]]:
        params: list[tuple[str, Any]] = []
        while True:
            self.skip_space(newlines=True)
            c = self.peek()
            if c == ")":
                self.pos += 1
                return params
            if c == ",":
                self.pos += 1
                continue
            if c == "[":
                self.skip_attribute()
                continue
            m = self.at(_VAR)
            if not m:
                raise self.error("Missing ')' in the param block, or a parameter is not a "
                                 "$variable.")
            self.pos = m.end()
            self.skip_space(newlines=True)
            default = None
            if self.peek() == "=":
                self.pos += 1
                self.skip_space()
                default = self.parse_primary()
            params.append((m.group(1) or m.group(2), default))

    def parse_statements(self, end: str | None) -> list[Any]:
        statements: list[Any] = []
        while True:
            self.skip_space(newlines=True)
            c = self.peek()
            if not c:
                if end:
                    raise self.error(f"Missing closing '{end}'.")
                return statements
            if end and c == end:
                self.pos += 1
                return statements
            if c and c in ")}":
                raise self.error(f"Unexpected token '{c}' in expression or statement.")
            statements.append(self.parse_statement())
            self.skip_space()
            c = self.peek()
            if c and c not in "\n;" and c != end:
                if c == "|" and self.peek(1) == "|":
                    raise self.not_emulated("||", "pipeline chain operators")
                raise self.error(f"Unexpected token '{self.token_ahead(20)}' in "
                                 "expression or statement.")

    def parse_statement(self) -> Any:
        start, line = self.pos, self.line
        word = self.word_ahead()
        after = self.peek(len(word))
        bare = bool(word) and not (after.isalnum() or (after and after in "-_.\\:"))
        if bare and word.lower() in KEYWORDS:
            raise self.not_emulated(word.lower(), "control flow and definitions")
        if bare and word.lower() == "exit":
            self.pos += 4
            self.skip_space()
            code = None if (not self.peek() or self.peek() in ENDS) else self.parse_primary()
            return Exit(code, line, self.src[start:self.pos].strip())
        if self.peek() == "$":
            m = self.at(_ASSIGN)
            if m and m.group(3):
                raise self.not_emulated(f"{m.group(3)}=", "compound assignment")
            if m:
                self.pos = m.end()
                self.skip_space()
                value = self.parse_pipeline()
                return Assignment(m.group(1) or m.group(2), value, line,
                                  self.src[start:self.pos].strip())
            if self.at(_PROP_ASSIGN):
                raise self.not_emulated("property assignment")
        return self.parse_pipeline()

    # -- pipelines and commands -----------------------------------------------------------------

    def starts_expression(self) -> bool:
        c = self.peek()
        return bool(c) and (c in "$(@[{" or c in DQ or c in SQ or c.isdigit()
                            or (c in DASHES and self.peek(1).isdigit()))

    def parse_pipeline(self) -> Pipeline:
        start, line = self.pos, self.line
        stages: list[Any] = []
        discard = False
        while True:
            self.skip_space()
            if not self.peek() or self.peek() in ENDS:
                raise self.error("An empty pipe element is not allowed.")
            if not stages and self.starts_expression():
                stages.append(ExprStage(self.parse_expression(), self.line))
            else:
                stages.append(self.parse_command())
            while True:
                self.skip_space()
                m = self.at(_REDIRECT)
                if not m:
                    break
                self.pos = m.end()
                if m.group(0).endswith(("&1", "&2")):
                    continue
                self.skip_space()
                target = self.parse_element()
                if not (isinstance(target, VarRef) and target.name.lower() == "null"):
                    raise self.not_emulated(m.group(0), "redirection to a file")
                discard = discard or not m.group(0)[0].isdigit() or m.group(0)[0] == "1"
            if self.peek() == "|" and self.peek(1) != "|":
                self.pos += 1
                self.skip_space(newlines=True)
                continue
            return Pipeline(stages, line, self.src[start:self.pos].strip(), discard)

    def parse_command(self) -> Command:
        line, start = self.line, self.pos
        call = False
        if self.peek() == "&":
            call = True
            self.pos += 1
            self.skip_space()
        elif self.peek() == "." and self.peek(1) and self.peek(1) in WS:
            raise self.not_emulated(".", "dot-sourcing")
        name = self.parse_element()
        args: list[Any] = []
        while True:
            self.skip_space()
            c = self.peek()
            if not c or c in ENDS or self.at(_REDIRECT):
                return Command(name, args, line, call, self.src[start:self.pos].strip())
            if c == "&" and self.peek(1) == "&":
                raise self.not_emulated("&&", "pipeline chain operators")
            before = self.pos
            args.append(self.parse_argument())
            if self.pos == before:  # nothing consumed: a character no rule accepts
                raise self.error(f"Unexpected token '{self.token_ahead()}' in a command.")

    def parse_argument(self) -> Any:
        line = self.line
        if self.peek() and self.peek() in DASHES and self.peek(1) and self.peek(1) in DASHES \
                and self.peek(2) == "%":
            raise self.not_emulated("--%", "stop-parsing token")
        m = self.at(_PARAM)
        if m:
            end = m.end()
            follow = self.src[end] if end < len(self.src) else ""
            if m.group(2) or not follow or follow in WS or follow in ENDS or follow == ",":
                self.pos = end
                value = None
                if m.group(2):
                    self.skip_space()
                    value = self.parse_element()
                text = "-" + m.group(1) + (":" if m.group(2) else "")
                return Param(m.group(1), value, text, line)
        items = [self.parse_element()]
        while self.peek() == ",":
            self.pos += 1
            self.skip_space(newlines=True)
            items.append(self.parse_element())
        return items[0] if len(items) == 1 else ArrayExpr(items)

    # -- values ---------------------------------------------------------------------------------

    def parse_expression(self) -> Any:
        items = [self.parse_primary()]
        self.skip_space()
        while self.peek() == ",":
            self.pos += 1
            self.skip_space(newlines=True)
            items.append(self.parse_primary())
            self.skip_space()
        c = self.peek()
        if c and c not in ENDS and not self.at(_REDIRECT):
            raise self.not_emulated(self.token_ahead(), "operators and expressions")
        return items[0] if len(items) == 1 else ArrayExpr(items)

    def parse_primary(self) -> Any:
        c = self.peek()
        if c in DQ and c:
            return self.parse_dq()
        if c in SQ and c:
            return Text([self.parse_sq()])
        if c == "$" and self.peek(1) == "(":
            return self.parse_subexpr()
        if c == "$":
            var = self.parse_variable(props=True)
            if var is None:
                raise self.error("Variable reference is not valid.")
            return var
        if c and c in "(@":
            return self.parse_element()
        if c == "[":
            raise self.not_emulated("[type]", "type literals and casts")
        if c == "{":
            raise self.not_emulated("{ }", "script blocks")
        m = self.at(_NUMBER)
        if m and not _WORD_CHAR.match(self.src[m.end():m.end() + 1]):
            self.pos = m.end()
            return Literal(number(m.group(0)))
        raise self.not_emulated(self.token_ahead(), "expression")

    def parse_props(self) -> list[str]:
        props: list[str] = []
        while self.peek() == "." and (self.peek(1).isalpha() or self.peek(1) == "_"):
            m = self.at(_PROP)
            assert m
            self.pos = m.end()
            if self.peek() == "(":
                raise self.not_emulated(f".{m.group(1)}()", "method calls")
            props.append(m.group(1))
        if self.peek() == "[" or self.rest(2) == "::":
            raise self.not_emulated(self.rest(2), "indexing and static members")
        return props

    def parse_variable(self, props: bool) -> VarRef | None:
        m = self.at(_VAR)
        if not m:
            return None
        self.pos = m.end()
        return VarRef(m.group(1) or m.group(2), self.parse_props() if props else [])

    def parse_subexpr(self) -> SubExpr:
        array = self.peek() == "@"
        self.pos += 2 if self.peek() in "$@" else 1
        if self.depth >= MAX_DEPTH:
            raise self.error(f"Parentheses nested deeper than {MAX_DEPTH} levels.")
        self.depth += 1
        try:
            statements = self.parse_statements(")")
        finally:
            self.depth -= 1
        return SubExpr(statements, self.parse_props(), array)

    def parse_sq(self) -> str:
        self.pos += 1
        out = []
        while True:
            c = self.peek()
            if not c:
                raise self.error("The string is missing the terminator: '.")
            self.pos += 1
            if c in SQ:
                if self.peek() in SQ and self.peek():
                    out.append("'")
                    self.pos += 1
                    continue
                return "".join(out)
            out.append(c)

    def parse_dq(self) -> Text:
        self.pos += 1
        parts: list[Any] = []
        buf: list[str] = []

        def flush() -> None:
            if buf:
                parts.append("".join(buf))
                buf.clear()

        while True:
            c = self.peek()
            if not c:
                raise self.error('The string is missing the terminator: ".')
            if c in DQ:
                self.pos += 1
                if self.peek() in DQ and self.peek():
                    buf.append('"')
                    self.pos += 1
                    continue
                flush()
                return Text(parts or [""])
            if c == "`" and self.peek(1):
                buf.append(ESCAPES.get(self.peek(1), self.peek(1)))
                self.pos += 2
            elif c == "$" and self.peek(1) == "(":
                flush()
                parts.append(self.parse_subexpr())
            elif c == "$" and self.at(_VAR):
                flush()
                var = self.parse_variable(props=False)
                parts.append(var)
            else:
                buf.append(c)
                self.pos += 1

    def parse_element(self) -> Any:
        """One argument-mode value: a compound bare word, a string, a variable, ( … )."""
        c = self.peek()
        if c == "@" and self.peek(1) == "(":
            return self.parse_subexpr()
        if c == "@" and self.peek(1) and (self.peek(1) in "{" or self.peek(1) in DQ + SQ):
            raise self.not_emulated("@" + self.peek(1), "hashtables and here-strings")
        if c == "(":
            return self.parse_subexpr()
        if c == "{":
            raise self.not_emulated("{ }", "script blocks")
        parts: list[Any] = []
        buf: list[str] = []
        quoted = False

        def flush() -> None:
            if buf:
                parts.append("".join(buf))
                buf.clear()

        while True:
            c = self.peek()
            if not c or c in WS or c in ENDS or c == ",":
                break
            if c in DQ:
                flush()
                parts.extend(self.parse_dq().parts)
                quoted = True
            elif c in SQ:
                flush()
                parts.append(self.parse_sq())
                quoted = True
            elif c == "`":
                if self.peek(1) == "":
                    raise self.error("Missing the character after the escape character '`'.")
                if self.peek(1) == "\n":
                    break
                buf.append(self.peek(1))
                self.pos += 2
            elif c == "$" and self.peek(1) == "(":
                flush()
                parts.append(self.parse_subexpr())
            elif c == "$" and self.at(_VAR):
                flush()
                parts.append(self.parse_variable(props=not parts and not buf))
            elif c == "(":
                raise self.error("An unquoted '(' inside an argument is evaluated as a "
                                 "subexpression by PowerShell (for example icacls "
                                 "Everyone:(R)); quote the argument.")
            elif c == ">" and self.at(_REDIRECT):
                break
            else:
                buf.append(c)
                self.pos += 1
        flush()
        if len(parts) == 1 and isinstance(parts[0], VarRef | SubExpr):
            return parts[0]
        if not quoted and len(parts) == 1 and isinstance(parts[0], str):
            value = number(parts[0])
            if value is not None:
                return Literal(value)
        return Text(parts or [""])


def parse(text: str, file: str = "<script>") -> Script:
    return Parser(text, file).parse_script()
