"""Kubernetes label selectors in their string form, as `kubectl -l` and the API's
`labelSelector` parameter take them, and as the production-stack router passes its
`--k8s-label-selector` to its pod watch.

Grammar (k8s.io/apimachinery `labels.Parse`): requirements joined by commas, each one of
`key`, `!key`, `key=value`, `key==value`, `key!=value`, `key in (v1,v2)`, `key notin (v1,v2)`.
The empty selector selects everything — which is what the router watches when the flag is absent.
`key!=value` and `notin` also select objects without the key, as in Kubernetes."""

from __future__ import annotations

import re
from dataclasses import dataclass

_SET = re.compile(r"^(?P<key>[^\s!=(),]+)\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)$")
_CMP = re.compile(r"^(?P<key>[^\s!=(),]+)\s*(?P<op>==|=|!=)\s*(?P<value>[^\s!=(),]*)$")
_EXISTS = re.compile(r"^(?P<neg>!?)\s*(?P<key>[^\s!=(),]+)$")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # in | notin | exists | !exists
    values: frozenset[str] = frozenset()

    def matches(self, labels: dict[str, str]) -> bool:
        has = self.key in labels
        if self.op == "exists":
            return has
        if self.op == "!exists":
            return not has
        if self.op == "in":
            return has and labels[self.key] in self.values
        return not has or labels[self.key] not in self.values  # notin


def _split(text: str) -> list[str]:
    """Split on the commas that are not inside a value set."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


def parse(selector: str) -> tuple[Requirement, ...]:
    """The requirements of a selector string; ValueError naming the part that is not one."""
    if not selector.strip():
        return ()
    requirements = []
    for part in _split(selector):
        if m := _SET.match(part):
            values = frozenset(v.strip() for v in m["values"].split(",") if v.strip())
            requirements.append(Requirement(m["key"], m["op"], values))
        elif m := _CMP.match(part):
            op = "notin" if m["op"] == "!=" else "in"
            requirements.append(Requirement(m["key"], op, frozenset({m["value"]})))
        elif m := _EXISTS.match(part):
            requirements.append(Requirement(m["key"], "!exists" if m["neg"] else "exists"))
        else:
            raise ValueError(f"label selector {selector!r}: cannot parse {part!r} — write key=value, key!=value, "
                             "key in (a,b), key notin (a,b), key or !key, joined by commas")
    return tuple(requirements)


def matches(selector: str | dict[str, str], labels: dict[str, str]) -> bool:
    """Whether `labels` satisfy `selector` (a string, or a matchLabels map). Empty selects all."""
    if isinstance(selector, dict):
        return all(labels.get(key) == value for key, value in selector.items())
    return all(req.matches(labels) for req in parse(selector))
