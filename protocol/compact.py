"""Fast pickling for the frozen, slotted dataclasses that cross process boundaries in the hub.

The standard path for a slotted dataclass calls `dataclasses.fields()` for every object, both when
pickling and when unpickling; the hub's worker processes hand back hundreds of records per message,
and that lookup cost more than decoding them. Here an object's state is the tuple of its field
values, read with one `attrgetter` call and written back by an unrolled `__setstate__`.
"""

from __future__ import annotations

import dataclasses
import operator
from typing import Any, TypeVar

__all__ = ["compact_pickle"]

T = TypeVar("T")


def compact_pickle(cls: type[T]) -> type[T]:
    """Class decorator (put above `@dataclass`): pickle as a tuple of field values."""
    names = tuple(field.name for field in dataclasses.fields(cls))  # type: ignore[arg-type]
    getter = operator.attrgetter(*names)
    single = len(names) == 1

    def __getstate__(self: Any) -> tuple[Any, ...]:
        values = getter(self)
        return (values,) if single else values

    # Unrolled, as dataclasses write their own __init__: one assignment per field, no loop.
    lines = [f"    setattr(self, {name!r}, state[{index}])" for index, name in enumerate(names)]
    source = "def __setstate__(self, state):\n" + "\n".join(lines) + "\n"
    scope: dict[str, Any] = {"setattr": object.__setattr__}
    exec(source, scope)  # noqa: S102 - the source is built from the class's own field names
    __setstate__ = scope["__setstate__"]

    cls.__getstate__ = __getstate__  # type: ignore[method-assign]
    cls.__setstate__ = __setstate__  # type: ignore[attr-defined]
    return cls
