"""Checks of a notebook's parameters, run in the cell after its ``parameters`` cell: a value
outside the allowed ones stops the notebook there, with every problem and what is allowed,
instead of failing minutes later in a cell that says nothing about the parameter.

Each rule returns a problem (a sentence) or ``None``; :func:`check` raises one error with all of
them::

    parameters.check(
        parameters.integer("IMAGE_SIZE", IMAGE_SIZE, 32, 224, multiple=16),
        parameters.one_of("BASE_FILTERS", BASE_FILTERS, (8, 16, 32)),
    )
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

NAMED_DATASETS = ("shapes", "pets_sample", "oxford_pets")


class ParameterError(ValueError):
    """A parameter outside its allowed values."""


def check(*problems: str | None) -> None:
    """Raise :class:`ParameterError` naming every problem (``None`` entries are no problem)."""
    found = [problem for problem in problems if problem]
    if found:
        lines = "\n".join(f"- {problem}" for problem in found)
        raise ParameterError(f"Change the parameters cell, then run the notebook again:\n{lines}")


def integer(
    name: str,
    value: object,
    low: int,
    high: int | None = None,
    *,
    multiple: int = 1,
    optional: bool = False,
) -> str | None:
    """``value`` must be an int from ``low`` to ``high`` (inclusive; no upper bound when
    ``None``), a multiple of ``multiple``; ``None`` too when ``optional``."""
    if optional and value is None:
        return None
    upper = "" if high is None else f" to {high}"
    allowed = f"an integer from {low}{upper}"
    if multiple > 1:
        allowed = f"a multiple of {multiple} from {low}{upper}"
    if optional:
        allowed += ", or None"
    in_range = isinstance(value, int) and not isinstance(value, bool) and value >= low
    if in_range and (high is None or value <= high) and value % multiple == 0:
        return None
    return f"{name} must be {allowed}, not {value!r}"


def number(name: str, value: object, low: float, high: float) -> str | None:
    """``value`` must be a number strictly between ``low`` and ``high``."""
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if is_number and low < value < high:
        return None
    return f"{name} must be a number between {low} and {high}, not {value!r}"


def one_of(name: str, value: object, allowed: Iterable[object]) -> str | None:
    """``value`` must be one of ``allowed``."""
    allowed = tuple(allowed)
    if any(value == option and type(value) is type(option) for option in allowed):
        return None
    return f"{name} must be one of {', '.join(map(repr, allowed))}, not {value!r}"


def integers(name: str, values: object, low: int, *, none_allowed: bool = False) -> str | None:
    """``values`` must be a non-empty tuple or list of ints of at least ``low`` (and ``None``
    entries when ``none_allowed``)."""
    entries = values if isinstance(values, tuple | list) else ()
    if entries and all(
        (none_allowed and entry is None) or integer(name, entry, low) is None for entry in entries
    ):
        return None
    also = " or None" if none_allowed else ""
    return f"{name} must be a tuple of integers of at least {low}{also}, not {values!r}"


def dataset(name: str, value: object, named: Iterable[str] = NAMED_DATASETS) -> str | None:
    """``value`` must name a dataset the course knows or be a folder that exists."""
    named = tuple(named)
    if value in named or (isinstance(value, str) and Path(value).expanduser().is_dir()):
        return None
    choices = ", ".join(f'"{option}"' for option in named)
    return f"{name} must be {choices} or the path of an existing folder, not {value!r}"


def path_or(name: str, value: object, allowed: Iterable[object]) -> str | None:
    """``value`` must be one of ``allowed`` or the path of an existing file."""
    allowed = tuple(allowed)
    if value in allowed or (isinstance(value, str) and Path(value).expanduser().is_file()):
        return None
    choices = ", ".join(map(repr, allowed))
    return f"{name} must be {choices} or the path of an existing file, not {value!r}"
