"""Translate a Pebble template into Jinja source that the Pebble runtime helpers evaluate.

Every Pebble operator becomes a call to a helper filter (``(a)|_p_add(b)``) so that Pebble's
semantics (integer division, strict comparisons, Java string conversions) apply instead of Python's;
every context name is wrapped in ``_p_s`` so that a missing variable fails where Pebble would fail;
``??``, ``???``, ``is defined`` and ``| default`` become marker filters that the code generator turns
into lazily evaluated operands. Literal text is emitted as Jinja string constants, so nothing the user
writes outside delimiters can be interpreted by Jinja, and each segment keeps its line count so that
error messages point at the Pebble line.
"""
from __future__ import annotations

import keyword
from dataclasses import dataclass, field
from typing import Any

from ._errors import ExpressionError
from ._syntax import (
    Binary, Call, Filter, GetAttr, Interp, ListLit, Literal, MapLit, MethodCall, Name, Node, Parser, Raise,
    Segment, Ternary, Test, Unary, parse_expression_tokens, split_template,
)

BINARY_HELPERS = {
    "==": "_p_eq", "equals": "_p_eq", "!=": "_p_ne", "<": "_p_lt", ">": "_p_gt", "<=": "_p_le", ">=": "_p_ge",
    "+": "_p_add", "-": "_p_sub", "*": "_p_mul", "/": "_p_div", "%": "_p_mod", "~": "_p_cat",
    "..": "_p_range", "contains": "_p_contains", "in": "_p_in", "not in": "_p_notin",
    "??": "_p_nc", "???": "_p_uc",
}
# Names Jinja would read as something else than a context variable.
_JINJA_SPECIAL = {"and", "or", "not", "in", "is", "if", "else", "elif", "true", "false", "none", "True", "False",
                  "None", "self", "caller", "varargs", "kwargs", "super", "namespace"}
_OPEN_TAGS = {"if", "for", "filter", "macro", "block"}


@dataclass
class Translation:
    """The Jinja source of a template plus what the renderer needs to know about it."""

    source: str
    static: str | None = None           # the output when the template has nothing to evaluate
    single: str | None = None           # Jinja source of the expression when the template is one {{ }}
    single_line: int = 1                # line of that expression in the template


def jinja_string(value: str) -> str:
    """A Jinja string literal that decodes back to ``value`` exactly."""
    out = ["'"]
    for char in value:
        code = ord(char)
        if char == "\\":
            out.append("\\\\")
        elif char == "'":
            out.append("\\'")
        elif char == "\n":
            out.append("\\n")
        elif char == "\r":
            out.append("\\r")
        elif char == "\t":
            out.append("\\t")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        else:
            out.append(char)
    out.append("'")
    return "".join(out)


def _safe_identifier(name: str) -> bool:
    return (name.isidentifier() and not keyword.iskeyword(name) and name not in _JINJA_SPECIAL
            and not name.startswith("_p_") and not name.startswith("__"))


def native_name(name: str) -> str:
    """The Jinja local used for a loop variable, macro parameter or local ``set`` of ``name``."""
    if _safe_identifier(name) or name == "loop":
        return name
    return "_p_x_" + name.encode("utf-8").hex()


@dataclass
class _Frame:
    """An open block while walking the template: its kind, the names it binds, its enclosing body."""

    kind: str
    native: set[str] = field(default_factory=set)
    body: int = 0
    else_var: str | None = None      # for-loops with an else: the variable holding the iterable
    else_open: bool = False


class _Translator:
    def __init__(self, segments: list[Segment], registry: Any, keep_raw: bool):
        self.segments = segments
        self.registry = registry
        self.keep_raw = keep_raw
        self.parsed: dict[int, Any] = {}
        self.set_names: dict[int, set[str]] = {0: set()}
        self.for_counter = 0

    # --- pass 1: parse tags, find which names `set` stores in a namespace --------------------------
    def analyse(self) -> None:
        frames = [_Frame("root", body=0)]
        for index, segment in enumerate(self.segments):
            if segment.kind == "print":
                self.parsed[index] = parse_expression_tokens(segment.tokens)
            elif segment.kind == "tag":
                tag = self.parse_tag(segment)
                self.parsed[index] = tag
                name = tag[0]
                if name == "for":
                    frames.append(_Frame("for", {tag[1]}, frames[-1].body))
                elif name == "macro":
                    if any(frame.kind == "macro" for frame in frames):
                        raise ExpressionError("Macros can not be defined inside macros")
                    self.set_names[index] = set()
                    frames.append(_Frame("macro", {p for p, _ in tag[2]}, index))
                elif name == "block":
                    self.set_names[index] = set()
                    frames.append(_Frame("block", set(), index))
                elif name in ("if", "filter"):
                    frames.append(_Frame(name, set(), frames[-1].body))
                elif name in ("else", "elseif"):
                    if frames[-1].kind not in ("if", "for") or (name == "elseif" and frames[-1].kind != "if"):
                        raise ExpressionError(f"Unexpected tag \"{name}\" at line {segment.line}")
                elif name.startswith("end"):
                    opened = name[3:]
                    if len(frames) == 1 or frames[-1].kind != opened:
                        raise ExpressionError(f"Unexpected tag \"{name}\" at line {segment.line}")
                    frames.pop()
                elif name == "set":
                    target = tag[1]
                    if not self.is_native(target, frames):
                        self.set_names[frames[-1].body].add(target)
        if len(frames) > 1:
            raise ExpressionError(f"Unclosed tag \"{frames[-1].kind}\"; expected \"end{frames[-1].kind}\"")

    @staticmethod
    def is_native(name: str, frames: list[_Frame]) -> bool:
        for frame in reversed(frames):
            if name in frame.native:
                return True
            if frame.kind in ("macro", "block", "root"):
                return False
        return False

    def parse_tag(self, segment: Segment) -> tuple[Any, ...]:
        parser = Parser(segment.tokens)
        if parser.at_end():
            raise ExpressionError(f"Empty tag at line {segment.line}")
        token = parser.next()
        if token.kind != "name":
            raise ExpressionError(f"A tag must start with a name at line {segment.line}")
        name = token.value
        if name == "elif":
            name = "elseif"
        if name in ("if", "elseif"):
            result: tuple[Any, ...] = (name, parser.parse_expression())
        elif name == "for":
            var = parser.parse_new_variable_name()
            if not parser.next().is_name("in"):
                raise ExpressionError(f"Expected \"in\" in for tag at line {segment.line}")
            result = ("for", var, parser.parse_expression())
        elif name == "set":
            var = parser.parse_new_variable_name()
            parser.expect_punct("=")
            result = ("set", var, parser.parse_expression())
        elif name == "filter":
            chain = []
            while True:
                filter_name = parser.expect_name()
                args, kwargs = parser.parse_arguments() if parser.peek().is_punct("(") else ([], [])
                chain.append((filter_name, args, kwargs))
                if parser.peek().kind == "op" and parser.peek().value == "|":
                    parser.next()
                    continue
                break
            result = ("filter", chain)
        elif name == "macro":
            macro_name = parser.expect_name()
            result = ("macro", macro_name, parser.parse_macro_parameters())
        elif name == "block":
            token = parser.next()
            if token.kind == "name":
                block_name = token.value
            elif token.kind == "str" and len(token.value) == 1 and isinstance(token.value[0], str):
                block_name = token.value[0]
            else:
                raise ExpressionError(f"Invalid block name at line {segment.line}")
            result = ("block", block_name)
        elif name in ("else", "endif", "endfor", "endfilter", "endmacro"):
            result = (name,)
        elif name == "endblock":
            if not parser.at_end():
                parser.next()
            result = (name,)
        else:
            raise ExpressionError(f"Unexpected tag name \"{name}\" at line {segment.line}")
        if not parser.at_end():
            raise ExpressionError(f"Unexpected token in \"{name}\" tag at line {segment.line}")
        return result

    # --- pass 2: emit Jinja ------------------------------------------------------------------------
    def emit(self) -> str:
        main: list[str] = []
        hoisted: list[str] = []
        out = main
        frames = [_Frame("root", body=0)]
        macro_start_newlines = 0
        if self.set_names[0]:
            main.append("{% set _p_v = (none)|_p_newns %}")
        for index, segment in enumerate(self.segments):
            pad = "\n" * segment.newlines
            kind = segment.kind
            if kind == "text":
                if segment.value:
                    out.append("{{ " + jinja_string(segment.value) + pad + " }}")
                elif pad:
                    out.append("{#" + pad + "#}")
            elif kind == "raw":
                value = segment.source if self.keep_raw else segment.value
                out.append("{{ " + jinja_string(value) + pad + " }}" if value else "{#" + pad + "#}")
            elif kind == "comment":
                out.append("{#" + pad + "#}")
            elif kind == "print":
                out.append("{{ " + self.expr(self.parsed[index], frames) + pad + " }}")
            else:
                tag = self.parsed[index]
                name = tag[0]
                if name == "if":
                    out.append("{% if " + self.cond(tag[1], frames) + pad + " %}")
                    frames.append(_Frame("if", body=frames[-1].body))
                elif name == "elseif":
                    out.append("{% elif " + self.cond(tag[1], frames) + pad + " %}")
                elif name == "else":
                    frame = frames[-1]
                    if frame.kind == "for" and frame.else_var:
                        # Pebble renders nothing (not the else body) when the iterable is null.
                        out.append("{% else %}{% if (" + frame.else_var + ")|_p_notnull" + pad + " %}")
                        frame.else_open = True
                    else:
                        out.append("{% else" + pad + " %}")
                elif name == "for":
                    iterable = self.expr(tag[2], frames)
                    var = native_name(tag[1])
                    frame = _Frame("for", {tag[1]}, frames[-1].body)
                    if self.for_has_else(index):
                        self.for_counter += 1
                        holder = f"_p_f{self.for_counter}"
                        frame.else_var = holder
                        out.append("{% set " + holder + " = " + iterable + " %}{% for " + var + " in (" + holder
                                   + ")|_p_iter" + pad + " %}")
                    else:
                        out.append("{% for " + var + " in (" + iterable + ")|_p_iter" + pad + " %}")
                    frames.append(frame)
                elif name == "set":
                    value = self.expr(tag[2], frames)
                    if self.is_native(tag[1], frames):
                        out.append("{% set " + native_name(tag[1]) + " = " + value + pad + " %}")
                    else:
                        out.append("{% set _p_v." + native_name(tag[1]) + " = " + value + pad + " %}")
                elif name == "filter":
                    chain = "|".join(self.filter_call(f, a, k, frames, in_tag=True) for f, a, k in tag[1])
                    out.append("{% filter " + chain + pad + " %}")
                    frames.append(_Frame("filter", body=frames[-1].body))
                elif name == "macro":
                    params = []
                    for param, default in tag[2]:
                        params.append(native_name(param) + "=" + (self.expr(default, frames) if default else "none"))
                    out = []
                    out.append("{% macro " + native_name(tag[1]) + "(" + ", ".join(params) + ") %}")
                    if self.set_names[index]:
                        out.append("{% set _p_v = (none)|_p_newns %}")
                    macro_start_newlines = segment.newlines
                    frames.append(_Frame("macro", {p for p, _ in tag[2]}, index))
                elif name == "block":
                    out.append("{% block " + native_name(tag[1]) + pad + " %}")
                    if self.set_names[index]:
                        out.append("{% set _p_v = (none)|_p_newns %}")
                    frames.append(_Frame("block", set(), index))
                elif name == "endmacro":
                    out.append("{% endmacro %}")
                    body = "".join(out)
                    hoisted.append(body.replace("\n", " "))
                    newlines = macro_start_newlines + body.count("\n") + segment.newlines
                    out = main
                    if newlines:
                        out.append("{#" + "\n" * newlines + "#}")
                    frames.pop()
                else:  # endif, endfor, endfilter, endblock
                    frame = frames.pop()
                    if name == "endfor" and frame.else_open:
                        out.append("{% endif %}{% endfor" + pad + " %}")
                    else:
                        out.append("{% " + name + pad + " %}")
        return "".join(hoisted) + "".join(main)

    def for_has_else(self, start: int) -> bool:
        depth = 0
        for index in range(start + 1, len(self.segments)):
            tag = self.parsed.get(index)
            if self.segments[index].kind != "tag" or tag is None:
                continue
            name = tag[0]
            if name in _OPEN_TAGS:
                depth += 1
            elif name.startswith("end") and name[3:] in _OPEN_TAGS:
                if depth == 0:
                    return False
                depth -= 1
            elif name == "else" and depth == 0:
                return True
        return False

    # --- expressions -------------------------------------------------------------------------------
    def cond(self, node: Node, frames: list[_Frame]) -> str:
        return "(" + self.expr(node, frames) + ")|_p_ifb"

    def name_ref(self, name: str, frames: list[_Frame]) -> str:
        if self.is_native(name, frames):
            return native_name(name)
        body = frames[-1].body
        if name in self.set_names.get(body, ()):
            fallback = name if _safe_identifier(name) else f"(none)|_p_ctxsoft({jinja_string(name)})"
            return f"(_p_v)|_p_getv({jinja_string(native_name(name))}, {fallback})"
        return self.context_name(name)

    @staticmethod
    def context_name(name: str) -> str:
        if _safe_identifier(name) or name == "loop":
            return f"({name})|_p_s({jinja_string(name)})"
        return f"(none)|_p_ctx({jinja_string(name)})"

    def args(self, args: list[Node], kwargs: list[tuple[str, Node]], frames: list[_Frame]) -> str:
        parts = [self.expr(arg, frames) for arg in args]
        odd: list[str] = []
        for key, value in kwargs:
            if key.isidentifier() and not keyword.iskeyword(key) and key not in _JINJA_SPECIAL:
                parts.append(f"{key}={self.expr(value, frames)}")
            else:
                odd.append(f"{jinja_string(key)}: {self.expr(value, frames)}")
        if odd:
            parts.append("**{" + ", ".join(odd) + "}")
        return ", ".join(parts)

    def filter_call(self, name: str, args: list[Node], kwargs: list[tuple[str, Node]], frames: list[_Frame],
                    in_tag: bool = False) -> str:
        if name not in self.registry.filters:
            raise ExpressionError(f"Filter [{name}] does not exist.")
        call = self.registry.filters[name]
        rendered = self.args(args, kwargs, frames)
        return f"{call}({rendered})" if rendered or in_tag else call

    def expr(self, node: Node, frames: list[_Frame]) -> str:  # noqa: C901 - one branch per node type
        if isinstance(node, Literal):
            return self.literal(node.value)
        if isinstance(node, Name):
            return self.name_ref(node.name, frames)
        if isinstance(node, GetAttr):
            return f"({self.expr(node.obj, frames)})[{self.expr(node.key, frames)}]"
        if isinstance(node, Binary):
            left = self.expr(node.left, frames)
            right = self.expr(node.right, frames)
            if node.op in ("and", "or"):
                return f"(({left})|_p_b {node.op} ({right})|_p_b)"
            return f"(({left})|{BINARY_HELPERS[node.op]}({right}))"
        if isinstance(node, Filter):
            target = self.expr(node.obj, frames)
            if node.name == "default":
                return f"(({target})|_p_default({self.args(node.args, node.kwargs, frames) or 'none'}))"
            return f"(({target})|{self.filter_call(node.name, node.args, node.kwargs, frames)})"
        if isinstance(node, Test):
            target = self.expr(node.obj, frames)
            if node.name == "defined":
                result = f"({target})|_p_def"
            else:
                if node.name not in self.registry.tests:
                    raise ExpressionError(f"Test [{node.name}] does not exist.")
                test = self.registry.tests[node.name]
                rendered = self.args(node.args, [], frames)
                result = f"(({target}) is {test}({rendered}))" if rendered else f"(({target}) is {test})"
            return f"(not {result})" if node.negated else f"({result})"
        if isinstance(node, Call):
            rendered = self.args(node.args, node.kwargs, frames)
            function = self.registry.functions.get(node.name)
            if function is not None:
                return f"((none)|{function}({rendered}))"
            if node.name == "parent":
                raise ExpressionError("The parent() function needs template inheritance, which is not supported")
            return f"{native_name(node.name)}({rendered})"
        if isinstance(node, Unary):
            operand = self.expr(node.operand, frames)
            if node.op == "not":
                return f"(not ({operand})|_p_b)"
            return f"(({operand})|{'_p_neg' if node.op == '-' else '_p_pos'})"
        if isinstance(node, Ternary):
            cond = self.expr(node.cond, frames)
            return f"(({self.expr(node.yes, frames)}) if ({cond})|_p_tb else ({self.expr(node.no, frames)}))"
        if isinstance(node, ListLit):
            return "[" + ", ".join(self.expr(item, frames) for item in node.items) + "]"
        if isinstance(node, MapLit):
            pairs = [f"{self.expr(k, frames)}: {self.expr(v, frames)}" for k, v in node.pairs]
            return "{" + ", ".join(pairs) + "}"
        if isinstance(node, Interp):
            return "((none)|_p_interp(" + ", ".join(self.expr(part, frames) for part in node.parts) + "))"
        if isinstance(node, Raise):
            target = self.expr(node.obj, frames)
            return f"(({target})|{'_p_nn' if node.op == '??' else '_p_strict'})"
        if isinstance(node, MethodCall):
            rendered = self.args(node.args, [], frames)
            extra = f", {rendered}" if rendered else ""
            return f"(({self.expr(node.obj, frames)})|_p_method({jinja_string(node.name)}{extra}))"
        raise ExpressionError(f"Unsupported expression {node!r}")

    @staticmethod
    def literal(value: Any) -> str:
        if value is None:
            return "none"
        if value is True:
            return "true"
        if value is False:
            return "false"
        if isinstance(value, str):
            return jinja_string(value)
        if isinstance(value, float):
            return repr(value)
        return str(value)


def translate(source: str, registry: Any, keep_raw: bool = False) -> Translation:
    """Translate a Pebble template; raises ExpressionError on syntax errors."""
    segments = split_template(source)
    translator = _Translator(segments, registry, keep_raw)
    translator.analyse()
    dynamic = [s for s in segments if s.kind in ("print", "tag")]
    if not dynamic:
        static = "".join(s.source if (s.kind == "raw" and keep_raw) else s.value
                         for s in segments if s.kind in ("text", "raw"))
        return Translation("", static=static)
    jinja = translator.emit()
    single = None
    single_line = 1
    meaningful = [i for i, s in enumerate(segments)
                  if not (s.kind == "comment" or (s.kind == "text" and not s.value.strip()))]
    if len(meaningful) == 1 and segments[meaningful[0]].kind == "print":
        index = meaningful[0]
        single = translator.expr(translator.parsed[index], [_Frame("root", body=0)])
        single_line = segments[index].line
    return Translation(jinja, single=single, single_line=single_line)
