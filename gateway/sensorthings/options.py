"""Query options: ``$top $skip $count $select $orderby $expand $filter $skiptoken``.

``$filter`` and each ``$orderby`` expression go through the OData grammar of the
``odata-query`` package (a real lexer and LALR parser giving an AST); what is
left to this module is the option syntax around them: comma lists, nested
``$expand(...)`` options separated by ``;``, and ``asc``/``desc``. The splitter
below walks the text once, honouring quotes and parentheses, so a ``,`` or
``;`` inside a string literal or a nested option never splits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from odata_query import ast
from odata_query.exceptions import ODataException
from odata_query.grammar import ODataLexer, ODataParser

from .errors import bad_request

__all__ = ["DEFAULT_TOP", "MAX_TOP", "Options", "OrderItem", "parse_expression",
           "parse_options", "split_top"]

DEFAULT_TOP = 100
MAX_TOP = 1000
_KNOWN = ("$top", "$skip", "$count", "$select", "$orderby", "$expand", "$filter",
          "$skiptoken", "$resultFormat")


@dataclass(frozen=True)
class OrderItem:
    expr: ast._Node
    desc: bool
    text: str


@dataclass
class Options:
    top: int = DEFAULT_TOP
    skip: int = 0
    count: bool = False
    select: tuple[str, ...] = ()
    orderby: tuple[OrderItem, ...] = ()
    expand: dict[str, Options] = field(default_factory=dict)
    filter: ast._Node | None = None
    skiptoken: str = ""
    #: the options as given (minus $skip / $skiptoken), to write into nextLinks
    raw: dict[str, str] = field(default_factory=dict)


def split_top(text: str, seps: str) -> list[str]:
    """Split ``text`` on any of ``seps`` outside quotes and parentheses."""
    out: list[str] = []
    cur: list[str] = []
    depth, quote = 0, False
    for ch in text:
        if quote:
            quote = ch != "'"
        elif ch == "'":
            quote = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise bad_request(f"unbalanced ')' in {text!r}")
        elif ch in seps and depth == 0:
            out.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    if depth or quote:
        raise bad_request(f"unbalanced parentheses or quotes in {text!r}")
    out.append("".join(cur))
    return out


def _unalias(text: str) -> str:
    """``@iot.id`` -> ``id`` outside string literals (the grammar has no ``@``)."""
    parts = text.split("'")
    for i in range(0, len(parts), 2):  # even parts are outside quotes
        parts[i] = parts[i].replace("@iot.id", "id")
    return "'".join(parts)


def parse_expression(text: str, what: str) -> ast._Node:
    try:
        node: ast._Node = ODataParser().parse(ODataLexer().tokenize(_unalias(text)))
    except ODataException as exc:
        raise bad_request(f"invalid {what} {text!r}: {exc}") from None
    except (IndexError, KeyError, ValueError, TypeError, AttributeError):
        raise bad_request(f"invalid {what} {text!r}") from None
    if node is None:
        raise bad_request(f"invalid {what} {text!r}: empty")
    return node


def _int(name: str, value: str) -> int:
    if not value.isdigit():
        raise bad_request(f"{name} must be a non-negative integer, not {value!r}")
    return int(value)


def _orderby(text: str) -> tuple[OrderItem, ...]:
    items = []
    for part in split_top(text, ","):
        words = part.strip().rsplit(None, 1)
        desc = False
        if len(words) == 2 and words[1].lower() in ("asc", "desc"):
            desc = words[1].lower() == "desc"
            part = words[0]
        items.append(OrderItem(parse_expression(part.strip(), "$orderby"), desc, part.strip()))
    return tuple(items)


def _expand(text: str) -> dict[str, Options]:
    out: dict[str, Options] = {}
    for item in split_top(text, ","):
        item = item.strip()
        nested = ""
        if item.endswith(")") and "(" in item:
            head, _, rest = item.partition("(")
            item, nested = head.strip(), rest[:-1]
        path = [p for p in item.split("/")]
        if not all(p.isidentifier() for p in path):
            raise bad_request(f"invalid $expand item {item!r}")
        opts = _nested(nested) if len(path) == 1 else Options()
        node = out.setdefault(path[0], opts)
        if len(path) == 1 and node is not opts:
            node.__dict__.update({k: v for k, v in opts.__dict__.items() if k != "expand"})
            node.expand.update(opts.expand)
        for p in path[1:]:
            node = node.expand.setdefault(p, Options())
        if len(path) > 1 and nested:
            leaf = _nested(nested)
            node.__dict__.update(leaf.__dict__)
    return out


def _nested(text: str) -> Options:
    pairs: dict[str, str] = {}
    for part in split_top(text, ";") if text.strip() else []:
        name, eq, value = part.partition("=")
        if not eq:
            raise bad_request(f"invalid nested option {part!r} in $expand")
        pairs[name.strip()] = value.strip()
    return parse_options(pairs)


def parse_options(params: Mapping[str, str]) -> Options:
    """The options of one request (or one nested $expand); 400 for a bad one."""
    o = Options()
    for name, value in params.items():
        if not name.startswith("$"):
            continue
        if name not in _KNOWN:
            raise bad_request(f"unknown query option {name}")
        if name not in ("$skip", "$skiptoken"):
            o.raw[name] = value
        if name == "$top":
            o.top = min(_int(name, value), MAX_TOP)
        elif name == "$skip":
            o.skip = _int(name, value)
        elif name == "$count":
            if value not in ("true", "false"):
                raise bad_request(f"$count must be true or false, not {value!r}")
            o.count = value == "true"
        elif name == "$select":
            o.select = tuple(_select(value))
        elif name == "$orderby":
            o.orderby = _orderby(value)
        elif name == "$expand":
            o.expand = _expand(value)
        elif name == "$filter":
            o.filter = parse_expression(value, "$filter")
        elif name == "$skiptoken":
            o.skiptoken = value
        elif name == "$resultFormat" and value != "default":
            raise bad_request("only $resultFormat=default is served (no dataArray)")
    return o


def _select(value: str) -> list[str]:
    out = []
    for s in value.split(","):
        s = s.strip().replace("@iot.id", "id")
        if not s.isidentifier():
            raise bad_request(f"invalid $select item {s!r}")
        out.append(s)
    return out


def describe(o: Options) -> dict[str, Any]:
    """For tests and logs: the parsed options as plain values."""
    return {"top": o.top, "skip": o.skip, "count": o.count, "select": list(o.select),
            "orderby": [(i.text, i.desc) for i in o.orderby],
            "expand": {k: describe(v) for k, v in o.expand.items()},
            "filter": o.filter is not None}
