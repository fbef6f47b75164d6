"""Input decoding of both protocols: property-based and table tests, no server."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kadence.serving.decoding import InputError, concat_columns, decode_v1, decode_v2
from kadence.serving.task import ServeColumn

OUTPUTS = ["predict", "predict_proba"]
V2_TYPE = {"float": "FP64", "int": "INT64", "bool": "BOOL", "string": "BYTES", "category": "BYTES", "datetime": "BYTES"}

names = st.text(st.characters(codec="ascii", categories=("L", "N")), min_size=1, max_size=8)
column_types = st.sampled_from(["float", "int", "bool", "string", "category"])


@st.composite
def signatures(draw):
    column_names = draw(st.lists(names, min_size=1, max_size=6, unique=True))
    return [ServeColumn(name=n, type=draw(column_types), nullable=draw(st.booleans())) for n in column_names]


def value_of(column: ServeColumn):
    base = {
        "float": st.floats(allow_nan=False, allow_infinity=False, width=64) | st.integers(-10**6, 10**6),
        # With a missing value a nullable int column becomes float64, exact up to 2**53.
        "int": st.integers(-2**53, 2**53) if column.nullable else st.integers(-2**62, 2**62),
        "bool": st.booleans(),
        "string": st.text(max_size=10),
        "category": st.text(max_size=10),
    }[column.type]
    return (base | st.none()) if column.nullable else base


@st.composite
def requests(draw):
    columns = draw(signatures())
    rows = draw(st.integers(1, 5))
    data = [{c.name: draw(value_of(c)) for c in columns} for _ in range(rows)]
    return columns, data


def same(decoded: np.ndarray, values: list) -> bool:
    for got, want in zip(decoded.tolist(), values):
        if want is None:
            if not (got is None or (isinstance(got, float) and math.isnan(got))):
                return False
        elif got != want or (isinstance(want, bool) != isinstance(got, bool) and decoded.dtype != np.float64):
            return False
    return len(decoded) == len(values)


@settings(max_examples=200, deadline=None)
@given(requests())
def test_rows_as_objects_lists_and_columns_all_decode_to_the_values_sent(request):
    columns, rows = request
    as_objects, n1 = decode_v1({"instances": rows}, columns)
    as_lists, n2 = decode_v1({"instances": [[r[c.name] for c in columns] for r in rows]}, columns)
    as_columns, n3 = decode_v1({"inputs": {c.name: [r[c.name] for r in rows] for c in columns}}, columns)
    v2 = decode_v2({"inputs": [{"name": c.name, "shape": [len(rows)], "datatype": V2_TYPE[c.type],
                                "data": [r[c.name] for r in rows]} for c in columns]}, columns, OUTPUTS)
    assert n1 == n2 == n3 == v2.rows == len(rows)
    for c in columns:
        sent = [r[c.name] for r in rows]
        for decoded in (as_objects, as_lists, as_columns, v2.columns):
            assert same(decoded[c.name], sent), (c, sent, decoded[c.name])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(-1e9, 1e9), min_size=3, max_size=3), st.integers(1, 4))
def test_one_matrix_tensor_equals_one_tensor_per_column(values, rows):
    columns = [ServeColumn(name=n, type="float") for n in ("a", "b", "c")]
    flat = values * rows
    matrix = decode_v2({"inputs": [{"name": "x", "shape": [rows, 3], "datatype": "FP64", "data": flat}]}, columns, OUTPUTS)
    nested = decode_v2({"inputs": [{"name": "x", "shape": [rows, 3], "datatype": "FP64",
                                    "data": [values for _ in range(rows)]}]}, columns, OUTPUTS)
    for j, c in enumerate(columns):
        assert matrix.columns[c.name].tolist() == [values[j]] * rows
        assert nested.columns[c.name].tolist() == [values[j]] * rows


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=20,
)
v1_shaped = st.fixed_dictionaries({"instances": json_values}) | st.fixed_dictionaries({"inputs": json_values}) | json_values
tensor = st.fixed_dictionaries({
    "name": st.sampled_from(["a", "b", "zz", ""]) | json_values,
    "shape": st.lists(st.integers(-1, 3), max_size=3) | json_values,
    "datatype": st.sampled_from(["FP64", "INT64", "BOOL", "BYTES", "FP16", "X"]) | json_values,
    "data": json_values,
})
v2_shaped = st.fixed_dictionaries({"inputs": st.lists(tensor, max_size=3)}, optional={
    "id": json_values, "parameters": json_values, "outputs": json_values}) | json_values
SMALL = [ServeColumn(name="a", type="float"), ServeColumn(name="b", type="string", nullable=True)]


@settings(max_examples=400, deadline=None)
@given(v1_shaped)
def test_any_json_either_decodes_or_is_refused_with_an_input_error_v1(body):
    try:
        columns, rows = decode_v1(body, SMALL)
    except InputError as error:
        assert str(error)
    else:
        assert rows >= 1 and all(len(columns[c.name]) == rows for c in SMALL)


@settings(max_examples=400, deadline=None)
@given(v2_shaped)
def test_any_json_either_decodes_or_is_refused_with_an_input_error_v2(body):
    try:
        request = decode_v2(body, SMALL, OUTPUTS)
    except InputError as error:
        assert str(error)
    else:
        assert request.rows >= 1 and all(len(request.columns[c.name]) == request.rows for c in SMALL)


def test_batches_of_requests_concatenate_per_column():
    columns = [ServeColumn(name="a", type="int", nullable=True), ServeColumn(name="b", type="string")]
    first, _ = decode_v1({"instances": [[1, "x"]]}, columns)
    second, _ = decode_v1({"instances": [[None, "y"], [3, "z"]]}, columns)
    merged = concat_columns([first, second], columns)
    assert merged["a"].tolist()[0] == 1 and math.isnan(merged["a"][1]) and merged["a"][2] == 3
    assert merged["b"].tolist() == ["x", "y", "z"]


@pytest.mark.parametrize("value, message", [
    (float("inf"), "expected a finite number, got infinity"),
    (True, "expected a number, got true"),
    ("1.5", "expected a number, got string '1.5'"),
    ([1.5], "expected a number, got a list of 1"),
])
def test_a_float_column_takes_only_finite_numbers(value, message):
    with pytest.raises(InputError, match=message.replace("[", r"\[").replace("(", r"\(")):
        decode_v1({"instances": [[value]]}, [ServeColumn(name="a", type="float")])


def test_a_datetime_column_takes_iso_strings():
    columns = [ServeColumn(name="when", type="datetime")]
    decoded, _ = decode_v1({"instances": [["2026-11-23T00:04:42Z"]]}, columns)
    assert decoded["when"].dtype == np.dtype("datetime64[ns]")
    with pytest.raises(InputError, match="expected an ISO 8601 date-time string, got string 'yesterday'"):
        decode_v1({"instances": [["yesterday"]]}, columns)


def test_an_integral_float_fits_an_int_column_in_v1_but_not_a_fraction():
    columns = [ServeColumn(name="n", type="int")]
    assert decode_v1({"instances": [[3.0]]}, columns)[0]["n"].tolist() == [3]
    with pytest.raises(InputError, match="expected an integer, got 3.5"):
        decode_v1({"instances": [[3.5]]}, columns)


def test_a_v2_id_must_be_a_string():
    with pytest.raises(InputError, match='"id" must be a non-empty string'):
        decode_v2({"id": 5, "inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [1.0]}]},
                  [ServeColumn(name="a", type="float")], OUTPUTS)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, width=32), min_size=1, max_size=6), st.lists(st.text(max_size=6), min_size=1, max_size=6))
def test_binary_tensors_decode_to_the_same_values_as_json_ones(numbers, texts):
    from kadence.serving.decoding import attach_binary_inputs

    raw_numbers = np.array(numbers, dtype="<f4").tobytes()
    raw_texts = b"".join(len(t.encode()).to_bytes(4, "little") + t.encode() for t in texts)
    body = {"inputs": [
        {"name": "x", "shape": [len(numbers)], "datatype": "FP32", "parameters": {"binary_data_size": len(raw_numbers)}},
        {"name": "s", "shape": [len(texts)], "datatype": "BYTES", "parameters": {"binary_data_size": len(raw_texts)}},
    ]}
    attached = attach_binary_inputs(body, raw_numbers + raw_texts)
    assert attached["inputs"][0]["data"] == np.array(numbers, dtype=np.float32).tolist()
    assert attached["inputs"][1]["data"] == texts


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64), st.integers(0, 70))
def test_any_binary_tail_either_decodes_or_is_refused_with_an_input_error(tail, size):
    from kadence.serving.decoding import attach_binary_inputs

    body = {"inputs": [{"name": "s", "shape": [1], "datatype": "BYTES", "parameters": {"binary_data_size": size}}]}
    try:
        attach_binary_inputs(body, tail)
    except InputError as error:
        assert str(error)
