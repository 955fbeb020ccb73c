"""YAML loading with line numbers, strict duplicate keys and Kestra's scalar rules.

Why not ``yaml.safe_load``:

* every validation error must point at a line of the source, so mappings and sequences are
  built as :class:`LineDict` / :class:`LineList`, which remember the (1-based) line of each key
  and item;
* Kestra (Jackson) rejects duplicate mapping keys ("Duplicate field 'x'"); PyYAML silently keeps
  the last one;
* Kestra reads YAML with YAML 1.2 "core schema" rules: ``yes``/``on`` are strings, unquoted dates
  (``2023-01-01``) and times (``11:59:59``) are strings, not ``date`` objects or sexagesimal
  integers; mapping keys are always text (``true:`` is the key ``"true"``). PyYAML follows
  YAML 1.1, so the implicit resolvers are replaced here.

Malformed YAML never escapes as a PyYAML traceback: :class:`YamlError` carries a list of
:class:`YamlProblem` with line numbers.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterator

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .errors import CelestraError

try:  # libyaml is much faster; the pure Python parser is an equivalent fallback
    _BaseLoader: type = yaml.CSafeLoader  # type: ignore[attr-defined]
except AttributeError:  # pragma: no cover - depends on the PyYAML build
    _BaseLoader = yaml.SafeLoader

__all__ = [
    "LineDict", "LineList", "YamlError", "YamlProblem", "load", "load_all", "split_documents",
    "line_of",
]


class LineDict(dict):
    """A dict that knows where it came from: ``line`` of the mapping, ``lines[key]`` of each key."""

    __slots__ = ("line", "lines")

    def __init__(self, *args: Any, line: int | None = None, lines: dict[Any, int] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.line = line
        self.lines: dict[Any, int] = lines if lines is not None else {}

    def line_of(self, key: Any) -> int | None:
        return self.lines.get(key, self.line)

    def __reduce__(self) -> Any:  # pickle as a plain dict plus positions
        return (_rebuild_dict, (dict(self), self.line, dict(self.lines)))


class LineList(list):
    """A list that knows the ``line`` where it starts and ``lines[i]`` of each item."""

    __slots__ = ("line", "lines")

    def __init__(self, *args: Any, line: int | None = None, lines: list[int] | None = None):
        super().__init__(*args)
        self.line = line
        self.lines: list[int] = lines if lines is not None else []

    def line_of(self, index: int) -> int | None:
        if 0 <= index < len(self.lines):
            return self.lines[index]
        return self.line

    def __reduce__(self) -> Any:
        return (_rebuild_list, (list(self), self.line, list(self.lines)))


def _rebuild_dict(data: dict, line: int | None, lines: dict) -> LineDict:
    return LineDict(data, line=line, lines=lines)


def _rebuild_list(data: list, line: int | None, lines: list) -> LineList:
    return LineList(data, line=line, lines=lines)


def line_of(container: Any, key: Any = None) -> int | None:
    """Line of ``container[key]`` (or of the container itself) when it carries positions."""
    if key is None:
        return getattr(container, "line", None)
    finder = getattr(container, "line_of", None)
    return finder(key) if finder is not None else None


@dataclass(frozen=True)
class YamlProblem:
    path: str
    line: int | None
    message: str


class YamlError(CelestraError):
    """The text is not loadable YAML (syntax error, duplicate key, unsupported tag...)."""

    def __init__(self, problems: list[YamlProblem]):
        self.problems = problems
        super().__init__(", ".join(
            (f"line {p.line}: " if p.line else "") + p.message for p in problems))


# --------------------------------------------------------------------------------------------------
# Resolver: YAML 1.2 core schema, as Jackson reads it.

class _Loader(_BaseLoader):  # type: ignore[misc, valid-type]
    """SafeLoader with YAML 1.2 core-schema implicit typing (no timestamps, no yes/no booleans)."""


_Loader.yaml_implicit_resolvers = {}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789"))
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
               r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+.0123456789"))
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""])
_Loader.add_implicit_resolver("tag:yaml.org,2002:merge", re.compile(r"^(?:<<)$"), ["<"])


def _construct_int(loader: Any, node: ScalarNode) -> int:
    text = loader.construct_scalar(node)
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text)


def _construct_float(loader: Any, node: ScalarNode) -> float:
    text = loader.construct_scalar(node).lower()
    if text.endswith(".inf"):
        return float("-inf") if text.startswith("-") else float("inf")
    if text == ".nan":
        return float("nan")
    return float(text)


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_Loader.add_constructor("tag:yaml.org,2002:float", _construct_float)
# An explicit !!timestamp tag still yields text: flows never need date objects.
_Loader.add_constructor("tag:yaml.org,2002:timestamp", lambda loader, node: loader.construct_scalar(node))

_MAX_DEPTH = 200
#: Uses of an alias to a mapping or a sequence in one document (SnakeYAML's maxAliasesForCollections,
#: which Kestra's parser keeps at 50): each use copies the collection, so a few hundred bytes of nested
#: aliases would otherwise expand into gigabytes.
MAX_ALIASES = 50
#: Characters of one YAML source (SnakeYAML's codePointLimit, 3 MiB).
MAX_CODE_POINTS = 3 * 1024 * 1024


def configure(max_aliases: int | None = None, max_code_points: int | None = None) -> None:
    """Set the process-wide limits (Django settings call it once at start-up)."""
    global MAX_ALIASES, MAX_CODE_POINTS
    if max_aliases is not None:
        MAX_ALIASES = int(max_aliases)
    if max_code_points is not None:
        MAX_CODE_POINTS = int(max_code_points)


class _TooManyAliases(Exception):
    def __init__(self, line: int):
        super().__init__(line)
        self.line = line


def _line(node: Node) -> int:
    return node.start_mark.line + 1


def _join(path: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


class _Builder:
    """Turns a composed node tree into LineDict/LineList values, collecting problems."""

    def __init__(self, loader: Any):
        self.loader = loader
        self.problems: list[YamlProblem] = []
        self._active: set[int] = set()
        self._built: set[int] = set()
        self._aliases = 0

    def build(self, node: Node, path: str = "", depth: int = 0) -> Any:
        if depth > _MAX_DEPTH or id(node) in self._active:
            self.problems.append(YamlProblem(path, _line(node), "recursive or too deeply nested YAML structure"))
            return None
        if isinstance(node, ScalarNode):
            try:
                return self.loader.construct_object(node, deep=True)
            except yaml.YAMLError as exc:
                self.problems.append(YamlProblem(path, _line(node), _describe(exc)))
                return None
        if id(node) in self._built:
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise _TooManyAliases(_line(node))
        self._built.add(id(node))
        self._active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                return self._sequence(node, path, depth)
            if isinstance(node, MappingNode):
                return self._mapping(node, path, depth)
        finally:
            self._active.discard(id(node))
        return None  # pragma: no cover - no other node kinds exist

    def _sequence(self, node: SequenceNode, path: str, depth: int) -> LineList:
        items = LineList(line=_line(node))
        for index, child in enumerate(node.value):
            items.append(self.build(child, _join(path, index), depth + 1))
            items.lines.append(_line(child))
        return items

    def _mapping(self, node: MappingNode, path: str, depth: int) -> LineDict:
        result = LineDict(line=_line(node))
        merged: list[tuple[Node, Node]] = []
        own: list[tuple[Node, Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                merged.extend(self._merge_sources(value_node, path))
            else:
                own.append((key_node, value_node))
        # Merged keys first, so that the mapping's own keys override them (YAML merge semantics).
        for key_node, value_node in merged:
            key = self._key(key_node, path)
            if key is None:
                continue
            result[key] = self.build(value_node, _join(path, key), depth + 1)
            result.lines[key] = _line(key_node)
        seen: set[Any] = set()
        for key_node, value_node in own:
            key = self._key(key_node, path)
            if key is None:
                continue
            if key in seen:
                self.problems.append(YamlProblem(path, _line(key_node), f"Duplicate field '{key}'"))
                continue
            seen.add(key)
            result[key] = self.build(value_node, _join(path, key), depth + 1)
            result.lines[key] = _line(key_node)
        return result

    def _merge_sources(self, value_node: Node, path: str) -> list[tuple[Node, Node]]:
        sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
        pairs: list[tuple[Node, Node]] = []
        for source in reversed(sources):  # earlier sources win, so they are applied last
            if not isinstance(source, MappingNode):
                self.problems.append(YamlProblem(path, _line(source), "a merge key '<<' expects a mapping"))
                continue
            pairs.extend(source.value)
        return pairs

    def _key(self, key_node: Node, path: str) -> Any:
        if isinstance(key_node, ScalarNode):
            # Jackson reads every key as text: `true:` and `1:` are the keys "true" and "1".
            return key_node.value
        self.problems.append(YamlProblem(path, _line(key_node), "mapping keys must be scalars"))
        return None


def _describe(exc: yaml.YAMLError) -> str:
    problem = getattr(exc, "problem", None)
    context = getattr(exc, "context", None)
    if problem:
        return f"{context}, {problem}" if context else str(problem)
    return str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__


def _syntax_error(exc: yaml.YAMLError) -> YamlError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = mark.line + 1 if mark is not None else None
    return YamlError([YamlProblem("", line, f"Invalid YAML: {_describe(exc)}")])


def _documents(source: str) -> Iterator[tuple[Node | None, Any]]:
    loader = _Loader(source)
    try:
        while loader.check_node():
            yield loader.get_node(), loader
    finally:
        loader.dispose()


def load_all(source: str) -> list[Any]:
    """Every document of ``source`` (empty documents are ``None``). Raises :class:`YamlError`."""
    if not isinstance(source, str):
        raise YamlError([YamlProblem("", None, "Invalid YAML: the source must be text")])
    if len(source) > MAX_CODE_POINTS:
        raise YamlError([YamlProblem("", None, f"Invalid YAML: the document has {len(source)} characters, more than "
                                               f"the limit of {MAX_CODE_POINTS} (CELESTRA_YAML_MAX_CHARS)")])
    results: list[Any] = []
    problems: list[YamlProblem] = []
    try:
        for node, loader in _documents(source):
            if node is None:
                results.append(None)
                continue
            builder = _Builder(loader)
            results.append(builder.build(node))
            problems.extend(builder.problems)
    except _TooManyAliases as exc:
        raise YamlError([YamlProblem("", exc.line, f"Invalid YAML: the document uses aliases of mappings or "
                                                   f"sequences more than {MAX_ALIASES} times, the limit "
                                                   "(CELESTRA_YAML_MAX_ALIASES)")]) from None
    except yaml.YAMLError as exc:
        raise _syntax_error(exc) from None
    except (ValueError, TypeError, RecursionError) as exc:  # e.g. NUL bytes, absurd nesting
        raise YamlError([YamlProblem("", None, f"Invalid YAML: {exc}")]) from None
    if problems:
        raise YamlError(problems)
    return results


def load(source: str) -> Any:
    """The first document of ``source`` (``None`` when empty).

    A flow file holds one flow; when several documents are present (``---``) only the first is
    the flow, as Kestra's parser reads it. Later documents must still be valid YAML.
    """
    documents = load_all(source)
    for document in documents:
        if document is not None:
            return document
    return None


def split_documents(source: str) -> list[tuple[str, int]]:
    """Split a multi-document text into ``(text, first_line)`` pieces, one per document.

    Used by bulk validation (``POST /flows/validate``): each piece is validated on its own.
    ``---`` inside a quoted or block scalar does not split, because the YAML parser decides.
    Invalid YAML yields the whole text as one piece so that its error is reported once.
    """
    starts: list[int] = []
    if len(source) > MAX_CODE_POINTS:
        return [(source, 1)]  # load_all reports the limit once
    try:
        for event in yaml.parse(source, Loader=_Loader):
            if isinstance(event, yaml.DocumentStartEvent):
                starts.append(event.start_mark.index)
    except yaml.YAMLError:
        return [(source, 1)]
    if len(starts) <= 1:
        return [(source, 1)]
    pieces: list[tuple[str, int]] = []
    for position, start in enumerate(starts):
        end = starts[position + 1] if position + 1 < len(starts) else len(source)
        text = source[start:end]
        first_line = source.count("\n", 0, start) + 1
        # Drop the explicit '---' marker line itself so the piece is a plain single document.
        stripped = re.sub(r"\A---[^\n]*\n?", "", text)
        if stripped != text:
            first_line += 1
        if stripped.strip():
            pieces.append((stripped, first_line))
    return pieces or [(source, 1)]
