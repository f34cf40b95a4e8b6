"""Typed JSON for frozen dataclasses and enums: an allow-list codec (never pickle, never eval).

A :class:`Codec` writes dataclasses, enums, dates, tuples, frozensets, dicts with any hashable keys
and non-finite floats as JSON with ``$``-tagged objects, and reads back only the classes and enums it
was built with; anything else is refused with the codec's error. The workspace (projects) and the saved
tiled results (:mod:`planning.tiled_result`) each hold one codec with their own allow-list.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from planning.errors import PlanningError


class CodecError(PlanningError):
    """A value the codec may not write, or a document naming a type it may not build."""


@dataclasses.dataclass(frozen=True)
class Custom:
    """A class stored through its own mapping form (for classes that are not plain dataclasses): written as
    ``{"$class": name, **to_dict(value)}``, read back by ``from_dict`` of that mapping without ``$class``."""

    cls: type
    to_dict: Callable[[Any], dict]
    from_dict: Callable[[dict], Any]


class Codec:
    """JSON text for values made of the allowed ``classes`` (dataclasses), ``enums`` and ``custom``
    classes, plain numbers, text, ``None``, dates and containers. ``error`` is the
    :class:`planning.errors.PlanningError` subclass raised for a refused value or type."""

    def __init__(self, classes: Iterable[type] = (), enums: Iterable[type] = (), custom: Iterable[Custom] = (), *,
                 error: type[PlanningError] = CodecError):
        self.classes: Mapping[str, type] = {cls.__name__: cls for cls in classes}
        self.enums: Mapping[str, type] = {cls.__name__: cls for cls in enums}
        self.custom: Mapping[str, Custom] = {c.cls.__name__: c for c in custom}
        self.error = error

    def dumps(self, value) -> str:
        """``value`` as JSON text (UTF-8 characters kept)."""
        return json.dumps(self.encode(value), ensure_ascii=False, allow_nan=False)

    def loads(self, text: str):
        """The value :meth:`dumps` wrote; a class or enum outside the allow-list is refused."""
        return self.decode(json.loads(text))

    def encode(self, value):
        """``value`` as plain JSON data (dicts, lists, numbers, text)."""
        if isinstance(value, enum.Enum):  # before str: a str enum is a str
            name = type(value).__name__
            if self.enums.get(name) is not type(value):
                raise self.error(f"无法保存枚举 {name}", f"cannot store the enum {name}")
            return {"$enum": name, "value": value.value}
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, (int, float)) or hasattr(value, "item"):  # numpy scalars too
            number = value.item() if hasattr(value, "item") else value
            if isinstance(number, float) and not math.isfinite(number):
                return {"$float": repr(number)}  # nan, inf, -inf: not JSON numbers
            return number
        name = type(value).__name__
        if name in self.custom and isinstance(value, self.custom[name].cls):
            return {"$class": name, **{k: self.encode(v) for k, v in self.custom[name].to_dict(value).items()}}
        if dataclasses.is_dataclass(value):
            if self.classes.get(name) is not type(value):
                raise self.error(f"无法保存类型 {name}", f"cannot store a {name}")
            return {"$class": name, **{f.name: self.encode(getattr(value, f.name)) for f in dataclasses.fields(value)
                                       if f.init}}
        if isinstance(value, dt.datetime):
            return {"$datetime": value.isoformat()}
        if isinstance(value, dt.date):
            return {"$date": value.isoformat()}
        if isinstance(value, (frozenset, set)):
            return {"$frozenset": sorted((self.encode(v) for v in value),
                                         key=lambda v: json.dumps(v, ensure_ascii=False, sort_keys=True))}
        if isinstance(value, tuple):
            return {"$tuple": [self.encode(v) for v in value]}
        if isinstance(value, list):
            return [self.encode(v) for v in value]
        if isinstance(value, dict):
            if all(isinstance(k, str) and not isinstance(k, enum.Enum) for k in value):
                return {"$dict": {k: self.encode(v) for k, v in value.items()}}
            return {"$pairs": [[self.encode(k), self.encode(v)] for k, v in value.items()]}
        raise self.error(f"无法保存值 {value!r}", f"cannot store the value {value!r}")

    def decode(self, value):
        """The value :meth:`encode` gave ``value`` for."""
        if isinstance(value, list):
            return [self.decode(v) for v in value]
        if not isinstance(value, dict):
            return value
        if "$enum" in value:
            if value["$enum"] not in self.enums:
                raise self.error(f"文件含未知枚举 {value['$enum']!r}", f"the file holds an unknown enum {value['$enum']!r}")
            return self.enums[value["$enum"]](value["value"])
        if "$date" in value:
            return dt.date.fromisoformat(value["$date"])
        if "$datetime" in value:
            return dt.datetime.fromisoformat(value["$datetime"])
        if "$float" in value:
            return float(value["$float"])
        if "$tuple" in value:
            return tuple(self.decode(v) for v in value["$tuple"])
        if "$frozenset" in value:
            return frozenset(self.decode(v) for v in value["$frozenset"])
        if "$dict" in value:
            return {k: self.decode(v) for k, v in value["$dict"].items()}
        if "$pairs" in value:
            return {self.decode(k): self.decode(v) for k, v in value["$pairs"]}
        name = value.get("$class")
        if name in self.custom:
            return self.custom[name].from_dict({k: self.decode(v) for k, v in value.items() if k != "$class"})
        if name not in self.classes:
            raise self.error(f"文件含未知类型 {name!r}", f"the file holds an unknown type {name!r}")
        return self.classes[name](**{k: self.decode(v) for k, v in value.items() if k != "$class"})
