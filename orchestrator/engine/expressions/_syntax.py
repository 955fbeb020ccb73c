"""Pebble syntax: splitting a template into text and tags, tokenizing and parsing expressions.

The grammar follows Pebble's own lexer and precedence-climbing parser (the behaviour Kestra users
rely on), not Jinja's: ``??`` binds tighter than ``|``, unary ``not``/``-`` only apply to the
operand that follows them, ``is``/``contains`` sit between ``and`` and comparisons, and strings only
know the ``\\'``, ``\\"`` and ``\\\\`` escapes. The parse result is a small AST that ``_translate``
turns into Jinja source.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Union

from ._errors import ExpressionError

# --- template segmentation ----------------------------------------------------------------------

_START = re.compile(r"\{\{|\{%|\{#")
_RAW_OPEN = re.compile(r"\{%-*\s*raw\s*-*%\}")
_RAW_CLOSE = re.compile(r"\{%-*\s*endraw\s*-*%\}")
_VERBATIM_OPEN = re.compile(r"\{%(-?)\s*verbatim\s*(-?)%\}")
_VERBATIM_CLOSE = re.compile(r"\{%(-?)\s*endverbatim\s*(-?)%\}")
_JAVA_SPACE = " \t\n\x0b\f\r"


@dataclass
class Segment:
    """One piece of a template.

    ``kind`` is ``text`` (literal output), ``raw`` (a ``{% raw %}`` block, ``value`` is its body and
    ``source`` the whole block with its tags), ``print`` (``{{ }}``), ``tag`` (``{% %}``) or
    ``comment``. ``newlines`` counts the line breaks of the segment in the source, so that the Jinja
    translation keeps line numbers aligned with the Pebble source.
    """

    kind: str
    value: str
    line: int
    newlines: int
    tokens: list["Token"] = field(default_factory=list)
    source: str = ""


def split_template(source: str) -> list[Segment]:
    """Split a Pebble template into segments, applying ``{{-``/``-}}`` whitespace control."""
    segments: list[Segment] = []
    pos = 0
    line = 1
    trim_next = False
    length = len(source)

    def add_text(raw: str, lstrip: bool, rstrip: bool) -> None:
        nonlocal line
        text = raw
        if lstrip:
            text = text.lstrip(_JAVA_SPACE)
        if rstrip:
            text = text.rstrip(_JAVA_SPACE)
        count = raw.count("\n")
        if text or count:
            segments.append(Segment("text", text, line, count))
        line += count

    while pos < length:
        match = _START.search(source, pos)
        if match is None:
            add_text(source[pos:], trim_next, False)
            break
        start = match.start()
        delimiter = match.group()
        if delimiter == "{%":
            raw = _RAW_OPEN.match(source, start)
            if raw:
                close = _RAW_CLOSE.search(source, raw.end())
                if close is None:
                    raise ExpressionError(f"Unclosed raw tag at line {_line_at(source, start)}")
                add_text(source[pos:start], trim_next, False)
                trim_next = False
                whole = source[start:close.end()]
                segments.append(Segment("raw", source[raw.end():close.start()], line, whole.count("\n"),
                                        source=whole))
                line += whole.count("\n")
                pos = close.end()
                continue
            verbatim = _VERBATIM_OPEN.match(source, start)
            if verbatim:
                close = _VERBATIM_CLOSE.search(source, verbatim.end())
                if close is None:
                    raise ExpressionError(f"Unclosed verbatim tag at line {_line_at(source, start)}")
                add_text(source[pos:start], trim_next, bool(verbatim.group(1)))
                body = source[verbatim.end():close.start()]
                if verbatim.group(2):
                    body = body.lstrip(_JAVA_SPACE)
                if close.group(1):
                    body = body.rstrip(_JAVA_SPACE)
                whole = source[start:close.end()]
                segments.append(Segment("text", body, line, whole.count("\n")))
                line += whole.count("\n")
                trim_next = bool(close.group(2))
                pos = close.end()
                continue
        after = match.end()
        lead_trim = source.startswith("-", after)
        add_text(source[pos:start], trim_next, lead_trim)
        trim_next = False
        if lead_trim:
            after += 1
        if delimiter == "{#":
            end = source.find("#}", after)
            if end < 0:
                raise ExpressionError(f"Unclosed comment at line {line}")
            trim_next = end > after and source[end - 1] == "-"
            whole = source[start:end + 2]
            segments.append(Segment("comment", "", line, whole.count("\n")))
            line += whole.count("\n")
            pos = end + 2
            continue
        close = "}}" if delimiter == "{{" else "%}"
        lexer = _ExprLexer(source, after, close, line)
        tokens = lexer.run()
        trim_next = lexer.trim_after
        whole = source[start:lexer.pos]
        segments.append(Segment("print" if delimiter == "{{" else "tag", source[after:lexer.pos], line,
                                whole.count("\n"), tokens, whole))
        line += whole.count("\n")
        pos = lexer.pos
    return segments


def _line_at(source: str, pos: int) -> int:
    return source.count("\n", 0, pos) + 1


# --- expression tokens --------------------------------------------------------------------------

@dataclass
class Token:
    kind: str  # name | num | str | op | punct | end
    value: Any
    pos: int

    def is_punct(self, value: str) -> bool:
        return self.kind == "punct" and self.value == value

    def is_name(self, value: str | None = None) -> bool:
        return self.kind == "name" and (value is None or self.value == value)


_OPERATORS = ("???", "??", "..", "==", "!=", ">=", "<=", ">", "<", "+", "-", "*", "/", "%", "|", "~")
_PUNCT = "()[]{}?:.,="
_NAME = re.compile(r"[^\W\d]\w*")
_LONG = re.compile(r"[0-9]+L")
_NUMBER = re.compile(r"[0-9]+(\.[0-9]+)?")
_SINGLE = re.compile(r"'([^'\\]*(?:\\.[^'\\]*)*)'", re.DOTALL)
_PAIRS = {"(": ")", "[": "]", "{": "}"}


class _ExprLexer:
    """Tokenizes from ``pos`` up to the closing delimiter (only recognised outside brackets)."""

    def __init__(self, source: str, pos: int, close: str, line: int):
        self.source = source
        self.pos = pos
        self.close = close
        self.line = line
        self.trim_after = False

    def error(self, message: str) -> ExpressionError:
        return ExpressionError(f"{message} (line {_line_at(self.source, self.pos)})")

    def run(self) -> list[Token]:
        tokens: list[Token] = []
        brackets: list[str] = []
        source, close = self.source, self.close
        length = len(source)
        while True:
            while self.pos < length and source[self.pos] in _JAVA_SPACE:
                self.pos += 1
            if self.pos >= length:
                opener = "{{" if close == "}}" else "{%" if close == "%}" else "#{"
                raise self.error(f"Unclosed \"{brackets[-1] if brackets else opener}\"")
            if not brackets:
                if source.startswith(close, self.pos):
                    self.pos += len(close)
                    tokens.append(Token("end", None, self.pos))
                    return tokens
                if close != "}" and source.startswith(close, self.pos + 1) and source[self.pos] == "-":
                    self.trim_after = True
                    self.pos += 1 + len(close)
                    tokens.append(Token("end", None, self.pos))
                    return tokens
            char = source[self.pos]
            start = self.pos
            if char == "'":
                match = _SINGLE.match(source, self.pos)
                if not match:
                    raise self.error("Unclosed string")
                tokens.append(Token("str", [_unescape(match.group(1), "'")], start))
                self.pos = match.end()
                continue
            if char == '"':
                tokens.append(Token("str", self._double_quoted(), start))
                continue
            matched_op = next((op for op in _OPERATORS if source.startswith(op, self.pos)), None)
            if matched_op:
                tokens.append(Token("op", matched_op, start))
                self.pos += len(matched_op)
                continue
            match = _NAME.match(source, self.pos)
            if match:
                tokens.append(Token("name", match.group(), start))
                self.pos = match.end()
                continue
            match = _LONG.match(source, self.pos)
            if match:
                tokens.append(Token("num", int(match.group()[:-1]), start))
                self.pos = match.end()
                continue
            match = _NUMBER.match(source, self.pos)
            if match:
                text = match.group()
                tokens.append(Token("num", float(text) if "." in text else int(text), start))
                self.pos = match.end()
                continue
            if char in _PUNCT:
                if char in _PAIRS:
                    brackets.append(char)
                elif char in ")]}":
                    if not brackets:
                        if close == "}" and char == "}":
                            raise self.error("Unexpected \"}\"")
                        raise self.error(f"Unexpected \"{char}\"")
                    opener = brackets.pop()
                    if _PAIRS[opener] != char:
                        raise self.error(f"Unclosed \"{opener}\"")
                tokens.append(Token("punct", char, start))
                self.pos += 1
                continue
            raise self.error(f"Unexpected character [{char}]")

    def _double_quoted(self) -> list[Any]:
        """A double-quoted string: literal parts and ``#{ expr }`` interpolations (token lists)."""
        source = self.source
        self.pos += 1
        parts: list[Any] = []
        buffer: list[str] = []
        while True:
            if self.pos >= len(source):
                raise self.error("Unclosed \"\"\"")
            char = source[self.pos]
            if char == "\\" and self.pos + 1 < len(source):
                nxt = source[self.pos + 1]
                buffer.append(nxt if nxt in "\"\\" else "\\" + nxt)
                self.pos += 2
            elif char == '"':
                self.pos += 1
                break
            elif char == "#" and source.startswith("#{", self.pos):
                if buffer:
                    parts.append("".join(buffer))
                    buffer = []
                inner = _ExprLexer(source, self.pos + 2, "}", self.line)
                parts.append(inner.run())
                self.pos = inner.pos
            else:
                buffer.append(char)
                self.pos += 1
        if buffer or not parts:
            parts.append("".join(buffer))
        return parts


def _unescape(text: str, quote: str) -> str:
    """Pebble only unescapes the quote character and the backslash."""
    if "\\" not in text:
        return text
    return text.replace("\\" + quote, quote).replace("\\\\", "\\")


# --- AST ----------------------------------------------------------------------------------------

@dataclass
class Literal:
    value: Any


@dataclass
class Name:
    name: str


@dataclass
class GetAttr:
    obj: "Node"
    key: "Node"


@dataclass
class Call:
    name: str
    args: list["Node"]
    kwargs: list[tuple[str, "Node"]]


@dataclass
class MethodCall:
    obj: "Node"
    name: str
    args: list["Node"]


@dataclass
class Filter:
    obj: "Node"
    name: str
    args: list["Node"]
    kwargs: list[tuple[str, "Node"]]


@dataclass
class Test:
    obj: "Node"
    name: str
    args: list["Node"]
    negated: bool


@dataclass
class Unary:
    op: str
    operand: "Node"


@dataclass
class Binary:
    op: str
    left: "Node"
    right: "Node"


@dataclass
class Ternary:
    cond: "Node"
    yes: "Node"
    no: "Node"


@dataclass
class ListLit:
    items: list["Node"]


@dataclass
class MapLit:
    pairs: list[tuple["Node", "Node"]]


@dataclass
class Interp:
    parts: list["Node"]


@dataclass
class Raise:
    obj: "Node"
    op: str


Node = Union[Literal, Name, GetAttr, Call, MethodCall, Filter, Test, Unary, Binary, Ternary, ListLit, MapLit,
             Interp, Raise]

# Pebble's binary operator precedences (CoreExtension + Kestra's ?? and ???, and newer in / not in).
PRECEDENCE = {
    "or": 10, "and": 15,
    "is": 20, "is not": 20, "contains": 20, "in": 20, "not in": 20,
    "==": 30, "equals": 30, "!=": 30, ">": 30, "<": 30, ">=": 30, "<=": 30,
    "+": 40, "-": 40, "*": 60, "/": 60, "%": 60,
    "|": 100, "~": 110, "..": 120, "??": 120, "???": 120,
}
_WORD_OPERATORS = {"or", "and", "is", "contains", "equals", "in"}
_UNARY_PRECEDENCE = 500
_CONSTANTS = {"true": True, "TRUE": True, "false": False, "FALSE": False,
              "none": None, "NONE": None, "null": None, "NULL": None}
_RESERVED = {"true", "false", "null", "none"}


class Parser:
    """Precedence-climbing expression parser over a token list (Pebble's algorithm)."""

    def __init__(self, tokens: list[Token], source: str = ""):
        self.tokens = tokens
        self.index = 0
        self.source = source

    # token helpers
    def peek(self, offset: int = 0) -> Token:
        index = self.index + offset
        return self.tokens[index] if index < len(self.tokens) else self.tokens[-1]

    def next(self) -> Token:
        token = self.peek()
        self.index += 1
        return token

    def error(self, message: str) -> ExpressionError:
        return ExpressionError(message)

    def expect_punct(self, value: str) -> Token:
        token = self.next()
        if not token.is_punct(value):
            raise self.error(f"Unexpected token {_describe(token)}, expected \"{value}\"")
        return token

    def expect_name(self) -> str:
        token = self.next()
        if token.kind != "name":
            raise self.error(f"Unexpected token {_describe(token)}, expected a name")
        return token.value

    def at_end(self) -> bool:
        return self.peek().kind == "end"

    # grammar
    def parse_expression(self, min_precedence: int = 0) -> Node:
        token = self.peek()
        expression: Node
        if (token.kind == "op" and token.value in ("-", "+")) or token.is_name("not"):
            self.next()
            operand = self.parse_expression(_UNARY_PRECEDENCE)
            expression = Unary("not" if token.kind == "name" else token.value, operand)
        elif token.is_punct("("):
            self.next()
            expression = self.parse_expression()
            self.expect_punct(")")
            expression = self.parse_postfix(expression)
        elif token.is_punct("["):
            expression = self.parse_postfix(self.parse_list())
        elif token.is_punct("{"):
            expression = self.parse_postfix(self.parse_map())
        else:
            expression = self.parse_primary()

        while True:
            operator, width = self.binary_operator()
            if operator is None or PRECEDENCE[operator] < min_precedence:
                break
            self.index += width
            if operator == "|":
                name = self.expect_name()
                args, kwargs = self.parse_arguments() if self.peek().is_punct("(") else ([], [])
                expression = Filter(expression, name, args, kwargs)
            elif operator in ("is", "is not"):
                name = self.expect_name()
                args, _ = self.parse_arguments() if self.peek().is_punct("(") else ([], [])
                expression = Test(expression, name, args, operator == "is not")
            elif operator in ("??", "???") and self.peek().is_name("raise") and not (
                    self.peek(1).is_punct("(") or self.peek(1).is_punct(".") or self.peek(1).is_punct("[")):
                self.next()
                expression = Raise(expression, operator)
            else:
                right = self.parse_expression(PRECEDENCE[operator] + 1)
                expression = Binary(operator, expression, right)

        if min_precedence == 0 and self.peek().is_punct("?"):
            self.next()
            yes = self.parse_expression()
            self.expect_punct(":")
            no = self.parse_expression()
            expression = Ternary(expression, yes, no)
        return expression

    def binary_operator(self) -> tuple[str | None, int]:
        token = self.peek()
        if token.kind == "op":
            return token.value, 1
        if token.kind == "name":
            if token.value == "is" and self.peek(1).is_name("not"):
                return "is not", 2
            if token.value == "not" and self.peek(1).is_name("in"):
                return "not in", 2
            if token.value in _WORD_OPERATORS:
                return token.value, 1
        return None, 0

    def parse_primary(self) -> Node:
        token = self.next()
        node: Node
        if token.kind == "name":
            if token.value in _CONSTANTS:
                node = Literal(_CONSTANTS[token.value])
            elif self.peek().is_punct("("):
                args, kwargs = self.parse_arguments()
                node = Call(token.value, args, kwargs)
            else:
                node = Name(token.value)
        elif token.kind == "num":
            node = Literal(token.value)
        elif token.kind == "str":
            node = self.string_node(token.value)
        else:
            raise self.error(f"Unexpected token {_describe(token)}")
        return self.parse_postfix(node)

    def string_node(self, parts: list[Any]) -> Node:
        nodes: list[Node] = []
        for part in parts:
            if isinstance(part, str):
                nodes.append(Literal(part))
            else:
                sub = Parser(part, self.source)
                nodes.append(sub.parse_expression())
                if not sub.at_end():
                    raise self.error(f"Unexpected token {_describe(sub.peek())} in string interpolation")
        if len(nodes) == 1 and isinstance(nodes[0], Literal):
            return nodes[0]
        return Interp(nodes)

    def parse_postfix(self, node: Node) -> Node:
        while True:
            token = self.peek()
            if token.is_punct("."):
                self.next()
                name_token = self.next()
                if name_token.kind != "name":
                    raise self.error(f"Unexpected token {_describe(name_token)} after \".\"")
                if self.peek().is_punct("("):
                    args, kwargs = self.parse_arguments()
                    if kwargs:
                        raise self.error("Can not use named arguments when calling a bean method")
                    node = MethodCall(node, name_token.value, args)
                else:
                    node = GetAttr(node, Literal(name_token.value))
            elif token.is_punct("["):
                self.next()
                key = self.parse_expression()
                self.expect_punct("]")
                node = GetAttr(node, key)
            elif token.is_punct("("):
                raise self.error("Only functions and macros can be called")
            else:
                return node

    def parse_arguments(self) -> tuple[list[Node], list[tuple[str, Node]]]:
        self.expect_punct("(")
        args: list[Node] = []
        kwargs: list[tuple[str, Node]] = []
        while not self.peek().is_punct(")"):
            if args or kwargs:
                self.expect_punct(",")
            if self.peek().kind == "name" and self.peek(1).is_punct("="):
                name = self.next().value
                self.next()
                if name in _RESERVED:
                    raise self.error(f"Can not assign a value to {name}")
                kwargs.append((name, self.parse_expression()))
            else:
                if kwargs:
                    raise self.error("Positional arguments must be declared before any named arguments.")
                args.append(self.parse_expression())
        self.expect_punct(")")
        return args, kwargs

    def parse_macro_parameters(self) -> list[tuple[str, Node | None]]:
        self.expect_punct("(")
        params: list[tuple[str, Node | None]] = []
        while not self.peek().is_punct(")"):
            if params:
                self.expect_punct(",")
            name = self.expect_name()
            default = None
            if self.peek().is_punct("="):
                self.next()
                default = self.parse_expression()
            params.append((name, default))
        self.expect_punct(")")
        return params

    def parse_list(self) -> Node:
        self.expect_punct("[")
        items: list[Node] = []
        while not self.peek().is_punct("]"):
            if items:
                self.expect_punct(",")
            items.append(self.parse_expression())
        self.expect_punct("]")
        return ListLit(items)

    def parse_map(self) -> Node:
        self.expect_punct("{")
        pairs: list[tuple[Node, Node]] = []
        while not self.peek().is_punct("}"):
            if pairs:
                self.expect_punct(",")
            key = self.parse_expression()
            self.expect_punct(":")
            pairs.append((key, self.parse_expression()))
        self.expect_punct("}")
        return MapLit(pairs)

    def parse_new_variable_name(self) -> str:
        name = self.expect_name()
        if name in _RESERVED:
            raise self.error(f"Can not assign a value to {name}")
        return name


def _describe(token: Token) -> str:
    if token.kind == "end":
        return "end of expression"
    if token.kind == "str":
        return "string"
    return f"\"{token.value}\""


def parse_expression_tokens(tokens: list[Token], source: str = "") -> Node:
    """Parse a whole token list (ending with the ``end`` token) as one expression."""
    parser = Parser(tokens, source)
    if parser.at_end():
        raise ExpressionError("Unexpected end of expression: the expression is empty")
    node = parser.parse_expression()
    if not parser.at_end():
        raise ExpressionError(f"Unexpected token {_describe(parser.peek())}")
    return node
