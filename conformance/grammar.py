"""The manifest's small languages, read by a tokenizer and a recursive-descent parser.

**Operations** (``action`` of a step, ``afterAction``): calls of Kestra's execution-service
operations, ``name(argument, …, key=value, …) [trailing words]``::

    call      := NAME "(" [argument ("," argument)*] ")" rest
    argument  := NAME "=" value | value
    value     := literal | list | tuple | phrase
    literal   := STRING | NUMBER | "null" | "true" | "false" | STATE | DESCRIPTION | "…"
    list      := "[" [value ("," value)*] "]"
    tuple     := "(" value ("," value)* ")"
    phrase    := WORD+ [tuple | STRING | WORD]      (execution and task-run references)

A phrase names the execution the operation applies to (``execution``, ``original execution``,
``result``) or a task run in any of the corpus' forms: ``taskRun (t, ['v'])``, ``taskRun 't'``,
``taskRunId of t``, ``taskRunId of (t, ['v'])``, ``from task run of t``, ``taskRunId=<id of t>``.
Positional arguments bind to Kestra's parameter names by what they are (an execution, a task run,
a state), keyword ones by name; the rest keeps what follows the closing parenthesis (``with form
inputs: a='x'``, ``again``). An "update the flow → revision 2" step is the call
``update(flow, revision=2)``. Anything else is a :class:`GrammarError` that names the form.

**Expectation paths**: a key ``taskRunList[2].state`` or ``taskRuns.t1.outputs.value`` is the
nested expectation it abbreviates (:func:`expand_paths`).

Pure Python: nothing here imports Django or the engine.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

__all__ = [
    "OPERATIONS", "STATES", "Call", "Description", "ExecutionRef", "GrammarError", "StateName",
    "TaskRunRef", "Token", "expand_all", "expand_paths", "is_call", "parse_call", "tokenize",
]

STATES = frozenset({
    "CREATED", "SUBMITTED", "QUEUED", "RUNNING", "PAUSED", "RESTARTED", "KILLING", "RETRYING", "BREAKPOINT",
    "SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED", "RETRIED", "SKIPPED", "RESUBMITTED",
})

#: Kestra's ExecutionService operations and their parameters, in order (``execution`` first; the
#: ``flow`` parameter Kestra also takes is implied by the execution). Defaults are Kestra's.
OPERATIONS: dict[str, tuple[tuple[str, Any], ...]] = {
    "restart": (("execution", None), ("revision", None)),
    "replay": (("execution", None), ("taskRunId", None), ("revision", None)),
    "markAs": (("execution", None), ("taskRunId", None), ("newState", None)),
    "resume": (("execution", None), ("newState", "RUNNING"), ("inputs", None)),
    "kill": (("execution", None),),
    "pause": (("execution", None),),
    "delete": (("execution", None), ("deleteLogs", True), ("deleteMetrics", True), ("deleteStorage", True)),
    "unqueue": (("execution", None), ("state", None)),
    "forceRun": (("execution", None),),
    "changeStatus": (("execution", None), ("newState", None)),
    "update": (("flow", None), ("revision", None)),
}
#: words that name the execution an operation applies to
EXECUTION_WORDS = {"execution": "current", "the execution": "current", "current execution": "current",
                   "original execution": "original", "original": "original", "the original execution": "original",
                   "result": "current", "restarted execution": "current", "replayed execution": "current",
                   "child execution": "child", "flow": "flow", "the flow": "flow"}
TASK_RUN_WORDS = ("taskrunid of", "taskrun of", "task run of", "from task run of", "from taskrun of",
                  "taskrunid", "taskrun", "task run", "from task run", "taskrunid =")


class GrammarError(ValueError):
    """A form the grammar does not know; the message names it and where it stands."""


@dataclass(frozen=True)
class Token:
    kind: str  # WORD STRING NUMBER DESC PUNCT ELLIPSIS ARROW
    text: str
    value: Any
    at: int


@dataclass(frozen=True)
class ExecutionRef:
    which: str  # current | original | child | flow


@dataclass(frozen=True)
class TaskRunRef:
    task_id: str
    values: tuple[str, ...] | None = None  # parent iteration values, outermost first


@dataclass(frozen=True)
class StateName:
    name: str


@dataclass(frozen=True)
class Description:
    """``<id of 2_end>``, ``<FILE upload …>``: a value described rather than written."""

    text: str


ELLIPSIS = object()


@dataclass
class Call:
    name: str
    args: dict[str, Any]  # bound to Kestra's parameter names; defaults filled in
    given: frozenset[str]  # the parameters the text set
    rest: str = ""
    text: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # keyword arguments after an ellipsis

    def __getitem__(self, name: str) -> Any:
        return self.args[name]


_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<desc><[^<>]*>)
  | (?P<ellipsis>…|\.\.\.)
  | (?P<arrow>→|->)
  | (?P<number>-?\d+(?:\.\d+)?(?![\w\-]))
  | (?P<word>[A-Za-z0-9_][\w\-.$]*)
  | (?P<punct>[()\[\],=:{}])
  | (?P<other>\S)
""", re.VERBOSE)


def tokenize(text: str) -> list[Token]:
    """The tokens of ``text``; a character of no other kind is an OTHER token (the parser refuses it
    inside a call, prose after the call may hold anything)."""
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        assert match is not None  # the OTHER alternative matches any character
        kind = match.lastgroup or ""
        raw = match.group(0)
        position = match.end()
        if kind == "space":
            continue
        if kind == "string":
            value: Any = re.sub(r"\\(.)", r"\1", raw[1:-1])
        elif kind == "number":
            value = float(raw) if "." in raw else int(raw)
        elif kind == "desc":
            value = Description(raw[1:-1].strip())
        else:
            value = raw
        tokens.append(Token(kind.upper(), raw, value, match.start()))
    return tokens


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = tokenize(text)
        self.position = 0

    def peek(self, offset: int = 0) -> Token | None:
        index = self.position + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def next(self) -> Token:
        token = self.peek()
        if token is None:
            raise GrammarError(f"unexpected end of {self.text!r}")
        self.position += 1
        return token

    def expect(self, text: str) -> Token:
        token = self.next()
        if token.text != text:
            raise GrammarError(f"expected {text!r} at column {token.at + 1} of {self.text!r}, found {token.text!r}")
        return token

    def at_punct(self, *texts: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == "PUNCT" and token.text in texts

    # call := NAME "(" [argument ("," argument)*] ")" rest
    def call(self) -> tuple[str, list[tuple[str | None, Any]], str]:
        name = self.next()
        if name.kind != "WORD" or not self.at_punct("("):
            raise GrammarError(f"not an operation call: {self.text!r}")
        self.expect("(")
        arguments: list[tuple[str | None, Any]] = []
        if not self.at_punct(")"):
            while True:
                arguments.append(self.argument())
                token = self.peek()
                if token is not None and token.kind == "ELLIPSIS":  # "deleteLogs=false…": more unnamed
                    self.next()
                    arguments.append((None, ELLIPSIS))
                if self.at_punct(","):
                    self.next()
                    continue
                break
        close = self.expect(")")
        rest = self.text[close.at + 1:].strip()
        return name.text, arguments, rest

    def argument(self) -> tuple[str | None, Any]:
        token, following = self.peek(), self.peek(1)
        if (token is not None and token.kind == "WORD" and following is not None
                and following.kind == "PUNCT" and following.text == "="):
            self.position += 2
            return token.text, self.value()
        return None, self.value()

    def value(self) -> Any:
        token = self.peek()
        if token is None:
            raise GrammarError(f"missing value at the end of {self.text!r}")
        if token.kind == "PUNCT" and token.text == "[":
            return self.sequence("[", "]")
        if token.kind == "PUNCT" and token.text == "(":
            return tuple(self.sequence("(", ")"))
        if token.kind in ("STRING", "NUMBER", "DESC"):
            self.next()
            return token.value
        if token.kind == "ELLIPSIS":
            self.next()
            return ELLIPSIS
        if token.kind == "WORD":
            return self.phrase()
        raise GrammarError(f"unexpected {token.text!r} at column {token.at + 1} of {self.text!r}")

    def sequence(self, opening: str, closing: str) -> list[Any]:
        self.expect(opening)
        items: list[Any] = []
        while not self.at_punct(closing):
            items.append(self.value())
            if self.at_punct(","):
                self.next()
            elif not self.at_punct(closing):
                token = self.peek()
                where = f"column {token.at + 1}" if token else "the end"
                raise GrammarError(f"expected ',' or {closing!r} at {where} of {self.text!r}")
        self.expect(closing)
        return items

    def phrase(self) -> Any:
        """Words up to a ``,`` or ``)``, with at most one trailing tuple, string or description."""
        words: list[str] = []
        start = self.peek()
        while True:
            token = self.peek()
            if token is None or token.kind == "ELLIPSIS" or (token.kind == "PUNCT" and token.text in (",", ")", "]")):
                break
            if token.kind == "WORD":
                words.append(token.text)
                self.next()
                continue
            if token.kind == "PUNCT" and token.text == "(" or token.kind in ("STRING", "DESC"):
                return _reference(words, self.value(), self.text, start)
            if token.kind == "PUNCT" and token.text == "=" and words:
                self.next()  # "taskRunId = <id of x>" written with spaces
                return _reference(words, self.value(), self.text, start)
            raise GrammarError(f"unexpected {token.text!r} at column {token.at + 1} of {self.text!r}")
        return _reference(words[:-1], words[-1], self.text, start) if len(words) > 1 and \
            " ".join(words[:-1]).lower() in TASK_RUN_WORDS else _word_value(words, self.text, start)


def _word_value(words: list[str], text: str, start: Token | None) -> Any:
    phrase = " ".join(words)
    lowered = phrase.lower()
    if lowered in EXECUTION_WORDS:
        return ExecutionRef(EXECUTION_WORDS[lowered])
    if len(words) == 1:
        word = words[0]
        if word in ("null", "None"):
            return None
        if word in ("true", "false"):
            return word == "true"
        if word in STATES:
            return StateName(word)
        return word  # a bare identifier: a task id, a flow id, an enum value
    column = start.at + 1 if start else 0
    raise GrammarError(f"unknown argument form {phrase!r} at column {column} of {text!r}")


def _reference(words: list[str], value: Any, text: str, start: Token | None) -> Any:
    """A task-run reference: words that say so, then ``(t, [values])``, ``'t'``, ``t`` or ``<id of t>``."""
    lowered = " ".join(words).lower()
    column = start.at + 1 if start else 0
    if lowered not in TASK_RUN_WORDS:
        raise GrammarError(f"unknown argument form {' '.join(words)!r} at column {column} of {text!r}")
    if isinstance(value, tuple):
        if not value or not isinstance(value[0], str):
            raise GrammarError(f"a task-run reference needs a task id first, at column {column} of {text!r}")
        values = value[1] if len(value) > 1 else []
        if len(value) > 2 or not isinstance(values, list):
            raise GrammarError(f"a task-run reference is (taskId, [values]), at column {column} of {text!r}")
        return TaskRunRef(value[0], tuple(str(v) for v in values))
    if isinstance(value, Description):
        found = re.fullmatch(r"id of (?:task run )?'?([\w\-.]+)'?", value.text)
        if not found:
            raise GrammarError(f"unknown task-run description <{value.text}> at column {column} of {text!r}")
        return TaskRunRef(found.group(1))
    if isinstance(value, str):
        return TaskRunRef(value)
    if value is None:
        return None
    raise GrammarError(f"unknown task-run reference {value!r} at column {column} of {text!r}")


_UPDATE = re.compile(r"^\s*update (?:the )?flow\b(?P<rest>.*?)(?:(?:→|->)\s*revision\s+(?P<revision>\d+))?\s*$",
                     re.IGNORECASE)


def parse_call(text: str) -> Call:
    """Parse and bind one operation call; :class:`GrammarError` for any form it does not know."""
    if not isinstance(text, str) or not text.strip():
        raise GrammarError("an empty operation")
    update = _UPDATE.match(text)
    if update and not text.strip().startswith("update("):
        revision = int(update.group("revision")) if update.group("revision") else None
        return Call("update", {"flow": ExecutionRef("flow"), "revision": revision},
                    frozenset({"flow", "revision"} if revision else {"flow"}), update.group("rest").strip(), text)
    parser = _Parser(text.strip())
    name, arguments, rest = parser.call()
    if name not in OPERATIONS:
        raise GrammarError(f"unknown operation {name!r} (known: {', '.join(sorted(OPERATIONS))}) in {text!r}")
    return bind(name, arguments, rest, text)


def bind(name: str, arguments: list[tuple[str | None, Any]], rest: str, text: str) -> Call:
    """Bind positional arguments by what they are, keyword ones by Kestra's parameter names."""
    parameters = [p for p, _ in OPERATIONS[name]]
    args: dict[str, Any] = {p: default for p, default in OPERATIONS[name]}
    given: set[str] = set()
    extra: dict[str, Any] = {}
    after_ellipsis = False

    def put(parameter: str, value: Any) -> None:
        if parameter in given:
            raise GrammarError(f"{name}: argument {parameter} given twice in {text!r}")
        given.add(parameter)
        args[parameter] = value

    for key, value in arguments:
        if value is ELLIPSIS:
            after_ellipsis = True
            continue
        if key is not None:
            if key not in parameters:
                if after_ellipsis:
                    extra[key] = value
                    continue
                raise GrammarError(f"{name}: unknown argument {key!r} (Kestra's are {', '.join(parameters)}) "
                                   f"in {text!r}")
            put(key, _unwrap(key, value, text))
            continue
        if isinstance(value, ExecutionRef):
            slot = parameters[0]
        elif isinstance(value, TaskRunRef) and "taskRunId" in parameters:
            slot = "taskRunId"
        elif isinstance(value, StateName):
            slot = next((p for p in parameters if p in ("newState", "state")), None)
            if slot is None:
                raise GrammarError(f"{name}: takes no state, got {value.name} in {text!r}")
        else:
            slot = next((p for p in parameters[1:] if p not in given and p != "taskRunId"), None)
            if slot is None:
                raise GrammarError(f"{name}: too many arguments in {text!r}")
        put(slot, _unwrap(slot, value, text))
    return Call(name, args, frozenset(given), rest, text, extra)


def _unwrap(parameter: str, value: Any, text: str = "") -> Any:
    if isinstance(value, StateName):
        return value.name
    if parameter == "taskRunId" and isinstance(value, Description):
        return _reference(["taskRunId"], value, text, None)
    if parameter == "taskRunId" and isinstance(value, str):
        return TaskRunRef(value) if not _looks_like_id(value) else value
    if parameter in ("newState", "state") and isinstance(value, str):
        if value not in STATES:
            raise GrammarError(f"unknown state {value!r} in {text!r}")
    return value


def _looks_like_id(value: str) -> bool:
    """Kestra ids are 22 characters of base62: a literal id rather than a task id."""
    return bool(re.fullmatch(r"[0-9A-Za-z]{22}", value))


# ---------------------------------------------------------------------------------------------------------
# Expectation paths
# ---------------------------------------------------------------------------------------------------------

_PATH = re.compile(r"\.?(?P<name>[^.\[\]]+)|\[(?P<index>-?\d+)\]")
#: expectation maps whose entries are keyed by task id (``taskRuns.<taskId>``)
_BY_TASK_ID = frozenset({"taskRuns", "taskRunCounts", "taskOutputs", "taskOutputsExact", "childExecutions"})
#: expectations a path may start with
PATH_HEADS = frozenset({"taskRunList", "flowOutputs", *_BY_TASK_ID})
#: other names for the same expectation
ALIASES = {"sameIdAsOriginal": "sameId", "sameExecutionIdAsOriginal": "sameExecutionId",
           "taskRunListFirst": "taskRunList[0]", "taskRunCountAtLeast": "taskRunCountMin"}


def path_parts(key: str) -> list[str | int]:
    """``taskRunList[2].outputs.value`` → ``['taskRunList', 2, 'outputs', 'value']``."""
    parts: list[str | int] = []
    position = 0
    while position < len(key):
        match = _PATH.match(key, position)
        if match is None or match.end() == position:
            raise GrammarError(f"malformed expectation path {key!r} at column {position + 1}")
        parts.append(int(match.group("index")) if match.group("index") is not None else match.group("name"))
        position = match.end()
    return parts


def expand_paths(expect: Any) -> Any:
    """Rewrite path keys (``taskRuns.t1.state``, ``taskRunList[2].state``) and aliases into the nested
    form of the manifest header; ``logsByTaskRunIndex`` / ``logsByTaskId`` become ``logs`` entries."""
    if not isinstance(expect, Mapping):
        return expect
    out: dict[str, Any] = {}
    for raw_key, value in expect.items():
        key = ALIASES.get(str(raw_key), str(raw_key))
        if key in ("logsByTaskRunIndex", "logsByTaskId"):
            scope = "taskRunIndex" if key == "logsByTaskRunIndex" else "taskId"
            if not isinstance(value, Mapping):
                raise GrammarError(f"{raw_key}: expected a map of {scope} to log expectations")
            for where, specs in value.items():
                for spec in specs if isinstance(specs, list) else [specs]:
                    entry = {"contains": spec} if isinstance(spec, str) else dict(spec)
                    entry[scope] = int(where) if scope == "taskRunIndex" else str(where)
                    out.setdefault("logs", []).append(entry)
            continue
        head_name = re.split(r"[.\[]", key, maxsplit=1)[0]
        if ("." not in key and "[" not in key) or head_name not in PATH_HEADS:
            # not an execution expectation path (parse checks such as ``task[2].retry`` keep their key)
            _merge(out, key, value)
            continue
        parts = path_parts(key)
        head, rest = parts[0], parts[1:]
        if not isinstance(head, str):
            raise GrammarError(f"an expectation path starts with a name: {raw_key!r}")
        if head == "taskRunList" and rest and isinstance(rest[0], int):
            entry = _nest(rest[1:], value)
            if not isinstance(entry, dict):
                raise GrammarError(f"{raw_key}: a task run expectation is a map")
            out.setdefault("taskRunList", []).append({"index": rest[0], **entry})
        elif head in _BY_TASK_ID and rest and isinstance(rest[0], str):
            _merge(out, head, {rest[0]: _nest(rest[1:], value)})
        else:
            _merge(out, head, _nest(rest, value))
    return out


def _nest(parts: list[str | int], value: Any) -> Any:
    for part in reversed(parts):
        if isinstance(part, int):
            raise GrammarError(f"an index [{part}] is only known after taskRunList")
        value = {part: value}
    return value


def _merge(out: dict[str, Any], key: str, value: Any) -> None:
    if key not in out:
        out[key] = value
        return
    existing = out[key]
    if isinstance(existing, list) and isinstance(value, list):
        out[key] = existing + value
    elif isinstance(existing, dict) and isinstance(value, Mapping):
        merged = dict(existing)
        for name, item in value.items():
            if name in merged and isinstance(merged[name], dict) and isinstance(item, Mapping):
                merged[name] = {**merged[name], **item}
            else:
                merged[name] = item
        out[key] = merged
    else:
        raise GrammarError(f"expectation {key!r} given twice")


_CALL_START = re.compile(r"^\s*(?:[A-Za-z]\w*\s*\(|update (?:the )?flow\b)", re.IGNORECASE)


def is_call(text: Any) -> bool:
    """Whether ``text`` is written as an operation call (else it is an HTTP request description)."""
    return isinstance(text, str) and bool(_CALL_START.match(text))


#: keys whose value is itself an execution expectation (phases, other executions of a scenario)
NESTED_EXPECTATIONS = frozenset({
    "atPause", "final", "afterAction", "atCreation", "execution1", "execution2", "restarted", "replayed",
    "response", "finalChild", "afterwards", "transform", "listener", "lastChildExecution",
})


def expand_all(expect: Any) -> Any:
    """:func:`expand_paths` on an expectation block and on the execution expectations nested in it."""
    expect = expand_paths(expect)
    if not isinstance(expect, dict):
        return expect
    for key, value in list(expect.items()):
        if key in NESTED_EXPECTATIONS and isinstance(value, Mapping):
            expect[key] = expand_all(value)
        elif key == "childExecutions" and isinstance(value, Mapping):
            expect[key] = {flow: expand_all(spec) for flow, spec in value.items()}
    return expect
