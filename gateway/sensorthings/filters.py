"""``$filter`` on the odata-query AST: exact evaluation, and the store window it implies.

:func:`evaluate` decides one entity (any set, with navigation paths such as
``Datastream/Thing/name``). :func:`window` reads the same AST for what the
store query can be narrowed to before evaluation: a time range from
comparisons on ``phenomenonTime`` / ``resultTime``, and the set of Datastreams
that any sub-expression touching only ``Datastream/...`` paths admits (decided
on the small Datastream graph). ``and`` intersects, ``or`` joins, anything else
leaves the window open; evaluation then keeps the answer exact.
"""

from __future__ import annotations

import datetime as dt
import math
import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from odata_query import ast

from .errors import bad_request
from .graph import NAV, Ent

__all__ = ["TIME_PROPS", "Nav", "Window", "evaluate", "lookup", "parse_time_ms", "residual",
           "window"]

TIME_PROPS = frozenset({"phenomenonTime", "resultTime", "time"})


class Nav(Protocol):
    """What a filter follows navigation with (the graph)."""

    def one(self, ent: Ent, nav: str) -> Ent | None: ...

    def related(self, ent: Ent, nav: str) -> list[Ent]: ...

NEVER = (1 << 62)


def parse_time_ms(text: str) -> int:
    """An ISO 8601 instant (UTC when no offset) as Unix ms."""
    try:
        t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise bad_request(f"not a time: {text!r}") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return int(round(t.timestamp() * 1000))


def path_of(node: ast._Node) -> tuple[str, ...] | None:
    if isinstance(node, ast.Identifier):
        return (node.name,)
    if isinstance(node, ast.Attribute):
        owner = path_of(node.owner)
        return None if owner is None else (*owner, node.attr)
    return None


def lookup(ent: Ent, path: tuple[str, ...], nav: Nav) -> Any:
    """The value at ``path`` of ``ent``, following navigation properties."""
    cur: Any = ent
    for i, name in enumerate(path):
        if isinstance(cur, Ent):
            if name == "id":
                cur = cur.id
            elif name in cur.props:
                cur = cur.props[name]
            elif NAV.get(cur.set, {}).get(name, ("", False))[1]:
                raise bad_request(f"{name} is a collection: use {name}/any(x: ...) in $filter")
            elif name[:1].isupper():
                cur = nav.one(cur, name)
                if cur is None and i + 1 < len(path):
                    return None
            else:
                raise bad_request(f"{ent.set} have no property {'/'.join(path)!r}")
        elif isinstance(cur, dict):
            cur = cur.get(name)
        else:
            return None
    if isinstance(cur, Ent):
        raise bad_request(f"{'/'.join(path)!r} is an entity, not a value")
    return cur


def _literal(node: ast._Node) -> Any:
    if isinstance(node, ast.Null):
        return None
    if isinstance(node, ast.Integer):
        return int(node.val)
    if isinstance(node, ast.Float):
        return float(node.val)
    if isinstance(node, ast.Boolean):
        return node.val.lower() == "true" if isinstance(node.val, str) else bool(node.val)
    if isinstance(node, ast.String):
        return node.val
    if isinstance(node, (ast.DateTime, ast.Date)):
        return parse_time_ms(node.val)
    if isinstance(node, ast.List):
        return [_literal(v) for v in node.val]
    raise bad_request(f"unsupported literal {node!r}")


_CMP: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge}
_ARITH: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.Mod: operator.mod}


def _utc(ms: Any) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


_FUNCS: dict[str, Callable[..., Any]] = {
    "startswith": lambda a, b: a.startswith(b), "endswith": lambda a, b: a.endswith(b),
    "contains": lambda a, b: b in a,
    "tolower": str.lower, "toupper": str.upper, "trim": str.strip, "length": len,
    "concat": lambda a, b: str(a) + str(b), "indexof": lambda a, b: a.find(b),
    "substring": lambda a, i, n=None: a[i:] if n is None else a[i:i + n],
    "year": lambda t: _utc(t).year, "month": lambda t: _utc(t).month,
    "day": lambda t: _utc(t).day, "hour": lambda t: _utc(t).hour,
    "minute": lambda t: _utc(t).minute, "second": lambda t: _utc(t).second,
    "round": round, "floor": math.floor, "ceiling": math.ceil,
}


def evaluate(node: ast._Node, ent: Ent, nav: Nav, env: dict[str, Ent] | None = None) -> Any:
    """The value of ``node`` for ``ent``; a comparison with a null or a value of another
    type is false (a filter never raises on data, only on its own syntax). ``env``: the
    variables of enclosing ``any``/``all`` lambdas."""
    if isinstance(node, ast.BoolOp):
        left = evaluate(node.left, ent, nav, env) is True
        if isinstance(node.op, ast.And):
            return left and evaluate(node.right, ent, nav, env) is True
        return left or evaluate(node.right, ent, nav, env) is True
    if isinstance(node, ast.UnaryOp):
        v = evaluate(node.operand, ent, nav, env)
        if isinstance(node.op, ast.Not):
            return not v
        return -v if isinstance(v, (int, float)) else None
    if isinstance(node, ast.Compare):
        a, b = evaluate(node.left, ent, nav, env), evaluate(node.right, ent, nav, env)
        if isinstance(node.comparator, ast.In):
            return isinstance(b, list) and a in b
        fn = _CMP[type(node.comparator)]
        if a is None or b is None:
            return fn is operator.eq and a is b or fn is operator.ne and a is not b
        try:
            return bool(fn(a, b))
        except TypeError:
            return False
    if isinstance(node, ast.BinOp):
        a, b = evaluate(node.left, ent, nav, env), evaluate(node.right, ent, nav, env)
        try:
            return _ARITH[type(node.op)](a, b)
        except (TypeError, ZeroDivisionError):
            return None
    if isinstance(node, ast.Call):
        func = _FUNCS.get(node.func.name)
        if func is None:
            raise bad_request(f"function {node.func.name}() is not supported")
        args = [evaluate(a, ent, nav, env) for a in node.args]
        try:
            return func(*args)
        except (TypeError, ValueError, AttributeError, OverflowError):
            return None
    if isinstance(node, ast.CollectionLambda):
        return _lambda(node, ent, nav, env or {})
    path = path_of(node)
    if path is not None:
        if env and path[0] in env:
            return lookup(env[path[0]], path[1:], nav) if len(path) > 1 else None
        return lookup(ent, path, nav)
    if isinstance(node, ast.List):
        return [evaluate(v, ent, nav, env) for v in node.val]
    return _literal(node)


def _lambda(node: ast.CollectionLambda, ent: Ent, nav: Nav, env: dict[str, Ent]) -> bool:
    """``Datastreams/any(d: d/name eq 'x')`` (and ``all``) over a small collection."""
    path = path_of(node.owner)
    owner: Ent | None = ent
    if path is not None and env and path[0] in env:
        owner, path = env[path[0]], path[1:]
    if path is None or owner is None or not path:
        raise bad_request("any()/all() need a navigation path")
    for name in path[:-1]:
        owner = nav.one(owner, name) if owner is not None else None
    if owner is None:
        return False
    target = NAV.get(owner.set, {}).get(path[-1])
    if target is None or not target[1] or target[0] == "Observations":
        raise bad_request(f"any()/all() over {'/'.join(path)!r} is not served")
    items = nav.related(owner, path[-1])
    if node.lambda_ is None:  # any() with no predicate: not empty
        return bool(items)
    var, expr = node.lambda_.identifier.name, node.lambda_.expression
    hits = (evaluate(expr, ent, nav, {**env, var: it}) is True for it in items)
    return any(hits) if isinstance(node.operator, ast.Any) else all(hits)


@dataclass(frozen=True)
class Window:
    """What a filter lets the store query narrow to: ``[since_ms, until_ms)`` and the
    Datastreams it admits (None: any)."""

    since_ms: int = 0
    until_ms: int = NEVER
    datastreams: frozenset[str] | None = None

    def __and__(self, o: Window) -> Window:
        ds = self.datastreams if o.datastreams is None else (
            o.datastreams if self.datastreams is None else self.datastreams & o.datastreams)
        return Window(max(self.since_ms, o.since_ms), min(self.until_ms, o.until_ms), ds)

    def __or__(self, o: Window) -> Window:
        ds = None if self.datastreams is None or o.datastreams is None else (
            self.datastreams | o.datastreams)
        return Window(min(self.since_ms, o.since_ms), max(self.until_ms, o.until_ms), ds)


def _paths(node: ast._Node) -> Iterable[tuple[str, ...]]:
    p = path_of(node)
    if p is not None:
        yield p
        return
    for v in vars(node).values():
        for item in v if isinstance(v, list) else [v]:
            if isinstance(item, ast._Node):
                yield from _paths(item)


_FLIP = {ast.Lt: ast.Gt, ast.LtE: ast.GtE, ast.Gt: ast.Lt, ast.GtE: ast.LtE,
         ast.Eq: ast.Eq}


def _time_window(node: ast.Compare) -> Window | None:
    left, right, cmp = node.left, node.right, type(node.comparator)
    if path_of(right) in (("phenomenonTime",), ("resultTime",)) and cmp in _FLIP:
        left, right, cmp = right, left, _FLIP[cmp]
    if path_of(left) not in (("phenomenonTime",), ("resultTime",)):
        return None
    if not isinstance(right, (ast.DateTime, ast.Date)):
        return None
    t = parse_time_ms(right.val)
    return {ast.Gt: Window(since_ms=t + 1), ast.GtE: Window(since_ms=t),
            ast.Lt: Window(until_ms=t), ast.LtE: Window(until_ms=t + 1),
            ast.Eq: Window(t, t + 1)}.get(cmp)


def window(node: ast._Node | None, admits: Callable[[ast._Node], frozenset[str]]) -> Window:
    """The store window of an Observations filter; ``admits(sub)`` gives the Datastream
    ids for which a ``Datastream/...``-only sub-expression holds."""
    if node is None:
        return Window()
    if isinstance(node, ast.BoolOp):
        a, b = window(node.left, admits), window(node.right, admits)
        return a & b if isinstance(node.op, ast.And) else a | b
    paths = list(_paths(node))
    if paths and all(p[0] == "Datastream" and len(p) > 1 for p in paths):
        return Window(datastreams=admits(node))
    if isinstance(node, ast.Compare):
        return _time_window(node) or Window()
    return Window()


def _absorbed(node: ast._Node) -> bool:
    """True when :func:`window` already decides ``node`` exactly: a time comparison it
    turned into bounds, or an expression on ``Datastream/...`` paths only."""
    if isinstance(node, ast.Compare) and _time_window(node) is not None:
        return True
    paths = list(_paths(node))
    return bool(paths) and all(p[0] == "Datastream" and len(p) > 1 for p in paths)


def residual(node: ast._Node | None) -> ast._Node | None:
    """What is left to evaluate per row once the store window is applied: the top-level
    ``and`` terms the window does not decide (None: nothing, every row read matches)."""
    if node is None or _absorbed(node):
        return None
    if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And):
        left, right = residual(node.left), residual(node.right)
        if left is None or right is None:
            return left or right
        return ast.BoolOp(ast.And(), left, right)
    return node
