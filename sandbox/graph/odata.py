"""The OData query options the sandbox understands, checked as Graph checks them: $filter,
$select, $orderby, $top (1-1000), $skip, $expand, $count; unknown options and properties are
400 (user-list-messages.md, query-parameters.md)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sandbox.graph.schema import NAVIGATION, S, property_of


class ODataError(ValueError):
    """A query option Graph would refuse with 400 (`code` as Graph names it)."""

    def __init__(self, message: str, code: str = "BadRequest") -> None:
        super().__init__(message)
        self.code = code


# The system query options of the collections the sandbox serves ($search: messages only).
KNOWN_OPTIONS = frozenset(
    {"$filter", "$select", "$orderby", "$top", "$skip", "$expand", "$count", "$search"}
)
MAX_TOP = 1000


def check_options(names: list[str]) -> None:
    """Refuse an unknown `$` option (Graph: "Unrecognized query argument specified")."""
    for name in names:
        if name.startswith("$") and name.lower() not in KNOWN_OPTIONS:
            raise ODataError(f"Unrecognized query argument specified: '{name}'.")


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<str>'(?:[^']|'')*')
      | (?P<dt>\d{4}-\d{2}-\d{2}T[0-9:.]+(?:Z|[+-]\d{2}:\d{2})?)
      | (?P<num>-?\d+(?:\.\d+)?)
      | (?P<punct>[()/,:])
      | (?P<word>[A-Za-z_@$][\w.@$-]*)
    )""",
    re.VERBOSE,
)
_COMPARE = {"eq", "ne", "gt", "ge", "lt", "le"}
_FUNCTIONS = {"contains", "startswith", "endswith"}


@dataclass(frozen=True)
class Token:
    kind: str
    text: str


def tokenize(text: str) -> list[Token]:
    """Split a $filter expression into tokens; raises ODataError on a stray character."""
    tokens: list[Token] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ODataError(f"Invalid filter clause: syntax error at position {pos} in '{text}'.")
        kind = m.lastgroup or ""
        tokens.append(Token(kind, m.group(kind)))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return tokens


# AST nodes are tuples: ("lit", value) ("path", [names]) ("cmp", op, left, right)
# ("and", l, r) ("or", l, r) ("not", x) ("any"/"all", [path], var, body) ("call", name, [args])
Node = tuple


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.pos = 0

    def peek(self, offset: int = 0) -> Token | None:
        i = self.pos + offset
        return self.tokens[i] if i < len(self.tokens) else None

    def take(self, text: str | None = None) -> Token:
        tok = self.peek()
        if tok is None or (text is not None and tok.text.lower() != text):
            raise ODataError(f"Invalid filter clause: expected '{text}' in '{self.text}'.")
        self.pos += 1
        return tok

    def at_word(self, *words: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind == "word" and tok.text.lower() in words

    def parse(self) -> Node:
        node = self.or_expr()
        if self.peek() is not None:
            raise ODataError(f"Invalid filter clause: unexpected '{self.peek().text}'.")
        return node

    def or_expr(self) -> Node:
        node = self.and_expr()
        while self.at_word("or"):
            self.take()
            node = ("or", node, self.and_expr())
        return node

    def and_expr(self) -> Node:
        node = self.not_expr()
        while self.at_word("and"):
            self.take()
            node = ("and", node, self.not_expr())
        return node

    def not_expr(self) -> Node:
        if self.at_word("not"):
            self.take()
            return ("not", self.not_expr())
        left = self.primary()
        if self.at_word(*_COMPARE):
            op = self.take().text.lower()
            return ("cmp", op, left, self.primary())
        return left

    def primary(self) -> Node:
        tok = self.take()
        if tok.text == "(":
            node = self.or_expr()
            self.take(")")
            return node
        if tok.kind == "str":
            return ("lit", tok.text[1:-1].replace("''", "'"))
        if tok.kind == "dt":
            return ("lit", tok.text)
        if tok.kind == "num":
            return ("lit", float(tok.text) if "." in tok.text else int(tok.text))
        if tok.kind != "word":
            raise ODataError(f"Invalid filter clause: unexpected '{tok.text}'.")
        low = tok.text.lower()
        if low in ("true", "false"):
            return ("lit", low == "true")
        if low == "null":
            return ("lit", None)
        nxt = self.peek()
        if low in _FUNCTIONS and nxt is not None and nxt.text == "(":
            self.take("(")
            args = [self.or_expr()]
            while self.peek() is not None and self.peek().text == ",":
                self.take(",")
                args.append(self.or_expr())
            self.take(")")
            return ("call", low, args)
        path = [tok.text]
        while self.peek() is not None and self.peek().text == "/":
            self.take("/")
            name = self.take()
            lam = name.text.lower()
            if lam in ("any", "all") and self.peek() is not None and self.peek().text == "(":
                self.take("(")
                var = self.take().text
                self.take(":")
                body = self.or_expr()
                self.take(")")
                return (lam, path, var, body)
            path.append(name.text)
        return ("path", path)


def parse_filter(text: str) -> Node:
    """Parse a $filter expression into a small AST; raises ODataError when it is not valid."""
    return _Parser(text).parse()


def _get(obj: Any, name: str) -> Any:
    if not isinstance(obj, dict):
        return None
    if name in obj:
        return obj[name]
    low = name.lower()
    for key, value in obj.items():
        if key.lower() == low:
            return value
    return None


def _resolve(path: list[str], item: dict[str, Any], env: dict[str, Any]) -> Any:
    head, rest = path[0], path[1:]
    value = env[head] if head in env else _get(item, head)
    for name in rest:
        value = _get(value, name)
    return value


_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T")


def _comparable(value: Any) -> Any:
    """Exchange compares strings case-insensitively and date-times as instants."""
    if isinstance(value, str):
        if _ISO.match(value):
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                return value.lower()
        return value.lower()
    return value


def _compare(op: str, left: Any, right: Any) -> bool:
    a, b = _comparable(left), _comparable(right)
    if op == "eq":
        return a == b
    if op == "ne":
        return a != b
    if a is None or b is None:
        return False
    try:
        return {"gt": a > b, "ge": a >= b, "lt": a < b, "le": a <= b}[op]
    except TypeError:
        return False


def evaluate(node: Node, item: dict[str, Any], env: dict[str, Any] | None = None) -> Any:
    """Evaluate a parsed $filter on one resource (a dict in Graph's shape)."""
    env = env or {}
    kind = node[0]
    if kind == "lit":
        return node[1]
    if kind == "path":
        return _resolve(node[1], item, env)
    if kind == "cmp":
        return _compare(node[1], evaluate(node[2], item, env), evaluate(node[3], item, env))
    if kind == "and":
        return bool(evaluate(node[1], item, env)) and bool(evaluate(node[2], item, env))
    if kind == "or":
        return bool(evaluate(node[1], item, env)) or bool(evaluate(node[2], item, env))
    if kind == "not":
        return not evaluate(node[1], item, env)
    if kind in ("any", "all"):
        values = _resolve(node[1], item, env) or []
        test = any if kind == "any" else all
        return test(evaluate(node[3], item, {**env, node[2]: v}) for v in values)
    if kind == "call":
        args = [evaluate(a, item, env) for a in node[2]]
        if len(args) != 2 or not all(isinstance(a, str) for a in args):
            return False
        hay, needle = args[0].lower(), args[1].lower()
        return {
            "contains": needle in hay,
            "startswith": hay.startswith(needle),
            "endswith": hay.endswith(needle),
        }[node[1]]
    raise ODataError(f"Unsupported filter node {kind}")


def compile_filter(text: str | None) -> Callable[[dict[str, Any]], bool]:
    """A predicate for `text` (always true when there is no filter); raises ODataError."""
    if not text:
        return lambda _item: True
    node = parse_filter(text)
    return lambda item: bool(evaluate(node, item))


def _unknown(name: str, type_name: str, code: str = "RequestBroker--ParseUri") -> ODataError:
    return ODataError(
        f"Could not find a property named '{name}' on type 'microsoft.graph.{type_name}'.", code
    )


def parse_select(text: str | None, type_name: str | None = None) -> list[str] | None:
    """The property names of $select, or None when every default property is wanted.

    With `type_name`, every name must be a property of that type (Graph: 400 "Parsing OData
    Select and Expand failed: Could not find a property named ...").
    """
    if not text:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    for name in names:
        if not re.fullmatch(r"[A-Za-z@][\w@.]*", name):
            raise ODataError(f"Parsing OData Select and Expand failed: invalid property '{name}'.")
        if type_name is not None and property_of(type_name, name) is None:
            unknown = _unknown(name, type_name, "BadRequest")
            raise ODataError(f"Parsing OData Select and Expand failed: {unknown}")
    return names


def check_filter(node: Node, type_name: str) -> None:
    """Raise ODataError (RequestBroker--ParseUri) for a property `type_name` does not have."""
    _check_node(node, type_name, {})


def _check_node(node: Node, type_name: str, env: dict[str, Any]) -> None:
    kind = node[0]
    if kind == "lit":
        return
    if kind == "path":
        _path_type(node[1], type_name, env)
    elif kind == "cmp":
        _check_node(node[2], type_name, env)
        _check_node(node[3], type_name, env)
    elif kind in ("and", "or"):
        _check_node(node[1], type_name, env)
        _check_node(node[2], type_name, env)
    elif kind == "not":
        _check_node(node[1], type_name, env)
    elif kind in ("any", "all"):
        collection = _path_type(node[1], type_name, env)
        if not isinstance(collection, list):
            raise ODataError(
                f"The '{kind}' lambda needs a collection, and '{'/'.join(node[1])}' is not one."
            )
        _check_node(node[3], type_name, {**env, node[2]: collection[0]})
    elif kind == "call":
        for arg in node[2]:
            _check_node(arg, type_name, env)


def _path_type(path: list[str], type_name: str, env: dict[str, Any]) -> Any:
    """The type at the end of `path` (a lambda variable starts from its element type)."""
    head, rest = path[0], path[1:]
    if head in env:
        current: Any = env[head]
    else:
        found = property_of(type_name, head)
        if found is None:
            raise _unknown(head, type_name)
        current = found[1]
    for name in rest:
        if not isinstance(current, str) or current == S:
            raise ODataError(
                f"Invalid property path '{'/'.join(path)}'.", "RequestBroker--ParseUri"
            )
        found = property_of(current, name)
        if found is None:
            raise _unknown(name, current)
        current = found[1]
    return current


def filter_properties(node: Node) -> list[str]:
    """The top-level properties a filter names, in order of first appearance (lower-case)."""
    seen: list[str] = []

    def walk(n: Node, env: frozenset[str]) -> None:
        kind = n[0]
        if kind == "path":
            if n[1][0] not in env and n[1][0].lower() not in seen:
                seen.append(n[1][0].lower())
        elif kind == "cmp":
            walk(n[2], env)
            walk(n[3], env)
        elif kind in ("and", "or"):
            walk(n[1], env)
            walk(n[2], env)
        elif kind == "not":
            walk(n[1], env)
        elif kind in ("any", "all"):
            walk(("path", n[1]), env)
            walk(n[3], env | {n[2]})
        elif kind == "call":
            for arg in n[2]:
                walk(arg, env)

    walk(node, frozenset())
    return seen


def check_filter_and_orderby(node: Node, orderby: list[tuple[str, bool]]) -> None:
    """Graph's rule for messages with both $filter and $orderby (user-list-messages.md): the
    $orderby properties must appear in $filter, in the same order, before any other property;
    otherwise 400 InefficientFilter."""
    order = [name.split("/")[0].lower() for name, _ in orderby]
    if filter_properties(node)[: len(order)] != order:
        raise ODataError(
            "The restriction or sort order is too complex for this operation.", "InefficientFilter"
        )


def parse_orderby(text: str | None, type_name: str | None = None) -> list[tuple[str, bool]]:
    """[(property, descending)] for $orderby (e.g. 'receivedDateTime desc'); with `type_name`
    every property must exist on it."""
    if not text:
        return []
    out = []
    for part in text.split(","):
        words = part.split()
        if (
            not words
            or len(words) > 2
            or (len(words) == 2 and words[1].lower() not in ("asc", "desc"))
        ):
            raise ODataError(f"Invalid $orderby clause '{text}'.")
        if type_name is not None:
            _path_type(words[0].split("/"), type_name, {})
        out.append((words[0], len(words) == 2 and words[1].lower() == "desc"))
    return out


def sort_items(
    items: list[dict[str, Any]], orderby: list[tuple[str, bool]]
) -> list[dict[str, Any]]:
    """Sort by each (property, descending) key, the last key first (stable sorts)."""
    for name, desc in reversed(orderby):
        items.sort(
            key=lambda it, n=name: (_get(it, n) is not None, _comparable(_get(it, n)) or ""),
            reverse=desc,
        )
    return items


def parse_top(text: str | None, default: int, maximum: int = MAX_TOP) -> int:
    """$top: 1 to `maximum` (user-list-messages.md: "within the range of 1 and 1000")."""
    if text is None:
        return default
    if not text.isdigit() or int(text) < 1:
        raise ODataError(f"Invalid value '{text}' for $top: it must be between 1 and {maximum}.")
    if int(text) > maximum:
        raise ODataError(
            f"The limit of '{maximum}' for Top query has been exceeded. The value from the "
            f"incoming request is '{text}'."
        )
    return int(text)


def parse_count(text: str | None) -> bool:
    """$count=true|false (anything else is 400)."""
    if text is None:
        return False
    if text.lower() not in ("true", "false"):
        raise ODataError(f"Invalid value '{text}' for $count: it must be true or false.")
    return text.lower() == "true"


def parse_skip(text: str | None) -> int:
    if text is None:
        return 0
    if not text.isdigit():
        raise ODataError(f"Invalid value '{text}' for $skip.")
    return int(text)


_EXPAND = re.compile(r"^\s*(?P<name>\w+)\s*(?:\(\s*\$filter\s*=\s*(?P<filter>.*)\)\s*)?$", re.S)


def parse_expand(text: str | None, type_name: str | None = None) -> dict[str, str | None]:
    """{navigation property: its inner $filter or None}, e.g. for `name($filter=id eq '…')`;
    with `type_name` each must be a navigation property of that type."""
    if not text:
        return {}
    out: dict[str, str | None] = {}
    for part in _split_top_level(text):
        m = _EXPAND.match(part)
        if not m:
            raise ODataError(f"Parsing OData Select and Expand failed: '{part}'.")
        name = m.group("name")
        if type_name is not None and name.lower() not in {
            n.lower() for n in NAVIGATION.get(type_name, ())
        }:
            unknown = _unknown(name, type_name, "BadRequest")
            raise ODataError(f"Parsing OData Select and Expand failed: {unknown}")
        out[name] = m.group("filter")
    return out


def _split_top_level(text: str) -> list[str]:
    parts, depth, quoted, start = [], 0, False, 0
    for i, ch in enumerate(text):
        if ch == "'":
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
        elif not quoted and depth == 0 and ch == ",":
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p for p in parts if p.strip()]
