"""One codec between the client's typed values (frozen dataclasses) and the JSON the read
model stores: ``dump`` walks a value by its fields, ``load`` rebuilds it by its type hints.

A refresh that asks Stigg for part of a customer takes the rest from the last good
document; what it takes back must be exactly what Stigg said, so both directions come
from the same field list instead of two hand-kept mappings."""
from __future__ import annotations

import functools
import types
from dataclasses import fields, is_dataclass
from datetime import datetime
from typing import Any, Callable, TypeVar, Union, get_args, get_origin, get_type_hints

from .readmodel import iso

T = TypeVar("T")


def dump(value: Any) -> Any:
    """A typed value as plain JSON: dataclasses as objects, datetimes as ISO strings,
    tuples as lists."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: dump(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, (list, tuple)):
        return [dump(v) for v in value]
    if isinstance(value, dict):
        return {k: dump(v) for k, v in value.items()}
    return value


def load(cls: type[T], data: Any) -> T:
    """The ``cls`` value ``dump`` turned into ``data``."""
    return _load(cls, data)  # type: ignore[no-any-return]


def load_all(cls: type[T], items: Any) -> list[T]:
    return [load(cls, item) for item in items]


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def _load(tp: Any, data: Any) -> Any:
    return _loader(tp)(data)


@functools.cache
def _loader(tp: Any) -> Callable[[Any], Any]:
    """A function that loads ``tp`` from its JSON, built once per type: walking the type
    hints on every value cost more than the values (a 2,000-node tree's times to limit)."""
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        options = [a for a in get_args(tp) if a is not type(None)]
        if len(options) != 1:
            raise TypeError(f"cannot load {tp}: only X | None unions are stored")
        inner = _loader(options[0])
        return lambda data: None if data is None else inner(data)
    if origin is tuple:
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            item = _loader(args[0])
            return lambda data: tuple(item(v) for v in data)
        items = [_loader(a) for a in args]
        return lambda data: tuple(fn(v) for fn, v in zip(items, data))
    if origin is list:
        item = _loader(get_args(tp)[0])
        return lambda data: [item(v) for v in data]
    if origin is dict:
        value = _loader(get_args(tp)[1])
        return lambda data: {k: value(v) for k, v in data.items()}
    if tp is datetime:
        return lambda data: datetime.fromisoformat(data) if data is not None else None
    if isinstance(tp, type) and is_dataclass(tp):
        hints = _hints(tp)
        loaders = [(f.name, _loader(hints[f.name])) for f in fields(tp)]
        return lambda data: tp(**{name: fn(data[name]) for name, fn in loaders if name in data})
    return _same


def _same(data: Any) -> Any:
    return data
