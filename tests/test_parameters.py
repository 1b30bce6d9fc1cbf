"""helpers.parameters: the checks each notebook runs on its parameters cell."""

from __future__ import annotations

import pytest

from helpers import parameters


def test_check_names_every_problem_at_once():
    with pytest.raises(parameters.ParameterError) as error:
        parameters.check(None, "A must be 1", None, "B must be 2")
    assert str(error.value).splitlines() == [
        "Change the parameters cell, then run the notebook again:",
        "- A must be 1",
        "- B must be 2",
    ]
    parameters.check(None, None)  # nothing wrong: no error


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (32, True),
        (224, True),
        (96, True),
        (40, False),
        (16, False),
        (240, False),
        (64.0, False),
        (True, False),
        (None, False),
        ("64", False),
    ],
)
def test_integer_with_range_and_multiple(value, ok):
    problem = parameters.integer("IMAGE_SIZE", value, 32, 224, multiple=16)
    assert (problem is None) == ok
    if not ok:
        assert problem == f"IMAGE_SIZE must be a multiple of 16 from 32 to 224, not {value!r}"


def test_integer_optional_and_unbounded():
    assert parameters.integer("EPOCHS", None, 1, optional=True) is None
    assert parameters.integer("EPOCHS", 10_000, 1) is None
    assert parameters.integer("EPOCHS", 0, 1, optional=True) == (
        "EPOCHS must be an integer from 1, or None, not 0"
    )


def test_number_one_of_and_integers():
    assert parameters.number("TARGET", 0.5, 0, 1) is None
    assert parameters.number("TARGET", 1, 0, 1) == "TARGET must be a number between 0 and 1, not 1"
    assert parameters.number("TARGET", "0.5", 0, 1) is not None
    assert parameters.one_of("BASE_FILTERS", 16, (8, 16, 32)) is None
    assert parameters.one_of("RESUME", 1, (True, False)) == (
        "RESUME must be one of True, False, not 1"
    )
    assert parameters.integers("SEEDS", (1, 2), 0) is None
    assert parameters.integers("COUNTS", (30, None), 1, none_allowed=True) is None
    for wrong in ((), 3, (1, "2"), (0,), [None]):
        assert parameters.integers("SEEDS", wrong, 1) is not None


def test_datasets_and_files(tmp_path):
    assert parameters.dataset("DATASET", "shapes") is None
    assert parameters.dataset("DATASET", str(tmp_path)) is None
    problem = parameters.dataset("DATASET", "shape", named=("shapes",))
    assert problem == "DATASET must be \"shapes\" or the path of an existing folder, not 'shape'"
    weights = tmp_path / "w.weights.h5"
    weights.write_bytes(b"")
    assert parameters.path_or("WEIGHTS", None, ("imagenet", None)) is None
    assert parameters.path_or("WEIGHTS", str(weights), ("imagenet", None)) is None
    assert parameters.path_or("WEIGHTS", "imagenett", ("imagenet", None)) == (
        "WEIGHTS must be 'imagenet', None or the path of an existing file, not 'imagenett'"
    )
