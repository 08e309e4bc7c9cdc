"""Compile Functions route templates ("operations/{operationId}") and match request paths."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

# ASP.NET Core route constraints the Functions host understands; others accept any segment.
_CONSTRAINTS = {
    "int": r"-?\d+",
    "long": r"-?\d+",
    "bool": r"(?i:true|false)",
    "guid": r"[0-9A-Fa-f]{8}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{12}",
    "alpha": r"[A-Za-z]+",
    "double": r"-?\d+(?:\.\d+)?",
    "float": r"-?\d+(?:\.\d+)?",
    "decimal": r"-?\d+(?:\.\d+)?",
}
_PARAM = re.compile(r"\{(?P<star>\*{1,2})?(?P<name>[A-Za-z_]\w*)(?P<rest>[^}]*)\}")


class RouteError(ValueError):
    """A route template the devhost cannot compile."""


@dataclass(frozen=True)
class Route:
    """A compiled route: the template, its regex and the parameter names."""

    template: str
    pattern: re.Pattern[str]
    params: tuple[str, ...]

    def match(self, path: str) -> dict[str, str] | None:
        """Route params for `path` (no prefix, no leading slash), or None if it does not match."""
        m = self.pattern.fullmatch(path.strip("/"))
        if m is None:
            return None
        return {k: unquote(v) for k, v in m.groupdict().items() if v is not None}


def _segment_pattern(rest: str, star: bool) -> tuple[str, bool]:
    """The regex for one parameter and whether it is optional, from its `:constraint` / `?`."""
    optional = rest.endswith("?")
    rest = rest.removesuffix("?")
    body = r".*" if star else r"[^/]+"
    for constraint in filter(None, rest.split(":")):
        name = constraint.split("(", 1)[0].lower()
        if name == "regex":
            body = constraint[len("regex(") : -1]
        elif name in _CONSTRAINTS:
            body = _CONSTRAINTS[name]
    return body, optional


def compile_route(template: str) -> Route:
    """Compile a route template; raises RouteError on an unbalanced or duplicate parameter."""
    template = template.strip("/")
    if template.count("{") != template.count("}"):
        raise RouteError(f"route {template!r}: unbalanced braces")
    parts: list[str] = []
    names: list[str] = []
    for i, segment in enumerate(template.split("/") if template else []):
        sep = "/" if i else ""
        pos, piece, optional_segment = 0, "", False
        for m in _PARAM.finditer(segment):
            piece += re.escape(segment[pos : m.start()])
            name = m["name"]
            if name in names:
                raise RouteError(f"route {template!r}: parameter {name!r} appears twice")
            names.append(name)
            body, optional = _segment_pattern(m["rest"], bool(m["star"]))
            piece += f"(?P<{name}>{body})"
            optional_segment = optional and m.start() == 0 and m.end() == len(segment)
            pos = m.end()
        piece += re.escape(segment[pos:])
        # An optional parameter filling its segment makes the segment (and its slash) optional.
        parts.append(f"(?:{sep}{piece})?" if optional_segment else f"{sep}{piece}")
    regex = "".join(parts)
    try:
        pattern = re.compile(regex, re.IGNORECASE)
    except re.error as exc:
        raise RouteError(f"route {template!r}: {exc}") from exc
    return Route(template, pattern, tuple(names))
