"""dataclass() for records whose methods are written out, without importing
dataclasses when the record's module is imported.

`import dataclasses` imports inspect (with ast, dis, tokenize, linecache):
~14 ms, paid by every command whose start-up defines a dataclass, a no-op
sync included. A module of records on that path reads

    TYPE_CHECKING = False
    if TYPE_CHECKING:
        from dataclasses import dataclass, field
    else:
        from syncagent.dataclass_lite import dataclass, field

so the type checker sees real dataclasses, and at run time each class
writes out its `__init__`, `__repr__`, `__eq__` and `__hash__` (the
decorator takes init=False, repr=False, eq=False only) and gets from here
what dataclass() would add besides: `__match_args__`, `__slots__`, the
frozen `__setattr__`/`__delattr__`, pickling of a frozen slots record, and
`__dataclass_fields__`/`__dataclass_params__` (so dataclasses.fields,
replace, asdict and is_dataclass work), which dataclass() itself builds on a
copy of the class the first time one is read.
tests/unit/test_dataclass_lite.py checks each against dataclass().
"""

from __future__ import annotations

from collections.abc import Callable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_FIELD_KEYS = ("__dataclass_fields__", "__dataclass_params__")


class _Factory:
    """`field(default_factory=...)`: what dataclass() is told when it builds the fields."""

    def __init__(self, default_factory: Callable[[], Any]) -> None:
        self.default_factory = default_factory


def field(*, default_factory: Callable[[], Any]) -> Any:
    return _Factory(default_factory)


def dataclass(*, init: bool = True, repr: bool = True, eq: bool = True, frozen: bool = False,
              slots: bool = False) -> Callable[[type], type]:
    if init or repr or eq:
        raise TypeError("dataclass_lite generates no method: write __init__, __repr__ and __eq__ out")
    return lambda cls: _record(cls, frozen, slots)


def _record(cls: type, frozen: bool, slots: bool) -> type:
    if cls.__bases__ != (object,):
        raise TypeError("dataclass_lite makes records without base classes only")
    names = tuple(cls.__annotations__)   # (a class's own, never its bases')
    defaults = {name: cls.__dict__[name] for name in names if name in cls.__dict__}
    lazy = [_LazyFields(key, defaults, frozen) for key in _FIELD_KEYS]
    added: dict[str, Any] = {"__match_args__": names, **dict(zip(_FIELD_KEYS, lazy, strict=True))}
    made: list[type] = []    # the class returned, which the frozen methods compare with
    if frozen:
        added["__setattr__"], added["__delattr__"] = _frozen_methods(made, names)
    gone = [name for name, default in defaults.items() if slots or isinstance(default, _Factory)]
    if slots:   # a new class, as dataclass() makes (a slot and a class attribute cannot share a name)
        body = {k: v for k, v in cls.__dict__.items() if k not in ("__dict__", "__weakref__", *gone)}
        body.update(added, __slots__=names)
        if frozen:   # (pickle sets no slot of a frozen record through its __setattr__)
            body.setdefault("__getstate__", lambda self: [getattr(self, name) for name in names])
            body.setdefault("__setstate__", _setstate(names))
        made.append(type(cls)(cls.__name__, cls.__bases__, body))
        made[0].__qualname__ = cls.__qualname__
    else:
        for name in gone:
            delattr(cls, name)
        for key, value in added.items():
            setattr(cls, key, value)
        made.append(cls)
    for fields in lazy:
        fields.owner = made[0]
    return made[0]


def field_values(record: Any) -> tuple[Any, ...]:
    """A written-out record's field values, in field order (what the generated methods compare)."""
    return tuple(getattr(record, name) for name in record.__match_args__)


def fields_repr(record: Any) -> str:
    """`__repr__` as dataclass() writes it, for a record with many fields."""
    fields = ", ".join(f"{name}={getattr(record, name)!r}" for name in record.__match_args__)
    return f"{type(record).__qualname__}({fields})"


def fields_eq(record: Any, other: object) -> bool:
    """`__eq__` as dataclass() writes it: records of the same class with equal fields."""
    if other.__class__ is not record.__class__:
        return NotImplemented  # type: ignore[no-any-return]  # (mypy types it Any outside a method)
    return field_values(record) == field_values(other)


def _setstate(names: tuple[str, ...]) -> Callable[[Any, list[Any]], None]:
    def __setstate__(self: Any, state: list[Any]) -> None:
        for name, value in zip(names, state, strict=True):
            object.__setattr__(self, name, value)

    return __setstate__


def _frozen_methods(made: list[type], names: tuple[str, ...]) -> tuple[Callable[..., None], Callable[..., None]]:
    """A frozen record's, as dataclass() writes them: a subclass may set attributes that are not fields."""
    def __setattr__(self: Any, name: str, value: Any) -> None:
        if type(self) is made[0] or name in names:
            raise _frozen(f"cannot assign to field {name!r}")
        object.__setattr__(self, name, value)   # (super() of a record without bases)

    def __delattr__(self: Any, name: str) -> None:
        if type(self) is made[0] or name in names:
            raise _frozen(f"cannot delete field {name!r}")
        object.__delattr__(self, name)

    return __setattr__, __delattr__


def _frozen(message: str) -> Exception:
    from dataclasses import FrozenInstanceError

    return FrozenInstanceError(message)


class _LazyFields:
    """`__dataclass_fields__` or `__dataclass_params__` of a record: built by
    dataclass() on a copy of the fields at the first read, then a plain class
    attribute (dataclasses.fields() and replace() read it through getattr)."""

    owner: type

    def __init__(self, key: str, defaults: dict[str, Any], frozen: bool) -> None:
        self.key, self.defaults, self.frozen = key, defaults, frozen

    def __get__(self, instance: object, cls: type | None = None) -> Any:
        import dataclasses

        owner = self.owner
        body: dict[str, Any] = {"__module__": owner.__module__, "__qualname__": owner.__qualname__,
                                "__annotations__": dict(owner.__annotations__)}
        for name, default in self.defaults.items():
            body[name] = (dataclasses.field(default_factory=default.default_factory)
                          if isinstance(default, _Factory) else default)
        copy: type = dataclasses.dataclass(type(owner.__name__, (), body), init=False, repr=False, eq=False,
                                     frozen=self.frozen)
        for key in _FIELD_KEYS:
            type.__setattr__(owner, key, copy.__dict__[key])
        return copy.__dict__[self.key]
