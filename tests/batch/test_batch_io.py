"""The batch workload's reading and typing, without storage: columns typed exactly as the model server's decoder
types the same values sent as JSON, chunks of the asked size, every input format, clear refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kadence.serving.decoding import decode_v1
from kadence.serving.task import ServeColumn
from kadence.workloads.batch_run import InputRefused, encode, output_table, read_batches, typed_columns

COLUMNS = [ServeColumn(name="tenure", type="int"), ServeColumn(name="charges", type="float"),
           ServeColumn(name="plan", type="category"), ServeColumn(name="paperless", type="bool"),
           ServeColumn(name="age", type="float", nullable=True), ServeColumn(name="visits", type="int", nullable=True),
           ServeColumn(name="signup", type="datetime")]

ROWS = [
    {"tenure": 3, "charges": 40.5, "plan": "basic", "paperless": True, "age": None, "visits": 2,
     "signup": "2026-01-02T03:04:05"},
    {"tenure": 70, "charges": 12.0, "plan": "pro", "paperless": False, "age": 51.5, "visits": None,
     "signup": "2025-12-31T23:59:59"},
]


def arrow_batch() -> pa.RecordBatch:
    frame = pd.DataFrame(ROWS)
    frame["visits"] = frame["visits"].astype("Int64")
    frame["signup"] = pd.to_datetime(frame["signup"])
    return pa.RecordBatch.from_pandas(frame, preserve_index=False)


def test_columns_are_typed_as_the_server_types_the_same_values_sent_as_json():
    batch = typed_columns(arrow_batch(), COLUMNS, 0)
    served, rows = decode_v1(json.loads(json.dumps({"instances": ROWS})), COLUMNS)
    assert rows == 2
    for column in COLUMNS:
        got, expected = batch[column.name], served[column.name]
        assert got.dtype == expected.dtype, column.name
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("column, values, message", [
    (ServeColumn(name="tenure", type="int"), pa.array([1, None, 3]), "row 11, column 'tenure': missing value \\(null\\)"),
    (ServeColumn(name="charges", type="float"), pa.array([1.0, float("nan")]), "row 11, column 'charges': missing value"),
    (ServeColumn(name="plan", type="category"), pa.array([1, 2]), "row 10, column 'plan': expected a string"),
], ids=["a null int", "a NaN float the model does not take", "numbers where strings are expected"])
def test_a_value_the_server_would_refuse_is_refused_naming_the_row(column, values, message):
    batch = pa.RecordBatch.from_arrays([values], names=[column.name])
    with pytest.raises(InputRefused, match=message):
        typed_columns(batch, [column], 10)


@pytest.fixture
def files(tmp_path) -> dict[str, Path]:
    frame = pd.DataFrame({"id": [f"c{i}" for i in range(2500)], "x": np.arange(2500), "label": [0, 1] * 1250})
    paths = {"parquet": tmp_path / "in.parquet", "csv": tmp_path / "in.csv", "jsonl": tmp_path / "in.jsonl"}
    pq.write_table(pa.Table.from_pandas(frame), paths["parquet"], row_group_size=700)
    frame.to_csv(paths["csv"], index=False)
    frame.to_json(paths["jsonl"], orient="records", lines=True)
    return paths


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_every_format_is_read_in_chunks_of_at_most_the_asked_rows_with_the_columns_asked(files, fmt):
    batches = list(read_batches([files[fmt]], fmt, ["id", "x"], 1000))
    assert max(b.num_rows for b in batches) <= 1000 and sum(b.num_rows for b in batches) == 2500
    assert batches[0].schema.names == ["id", "x"]
    assert pa.concat_arrays([b.column("x") for b in batches]).to_pylist() == list(range(2500))


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_an_optional_label_column_is_read_when_the_input_has_it(files, fmt):
    batch = next(read_batches([files[fmt]], fmt, ["id"], 1000, optional=("label", "absent")))
    assert batch.schema.names == ["id", "label"]


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_a_missing_model_column_is_refused_naming_it(files, fmt):
    with pytest.raises(InputRefused, match="the input has no column 'plan'"):
        list(read_batches([files[fmt]], fmt, ["id", "plan"], 1000))


def test_the_output_carries_the_entity_the_prediction_the_model_version_and_asked_probabilities():
    table = output_table(pa.array(["a", "b"]), "customer_id", np.array([1, 0]), "churn-v3",
                         np.array([[0.2, 0.8], [0.9, 0.1]]), [0, 1])
    assert table.column_names == ["customer_id", "prediction", "model_version", "probability_0", "probability_1"]
    assert table.to_pylist()[0] == {"customer_id": "a", "prediction": 1, "model_version": "churn-v3",
                                    "probability_0": 0.2, "probability_1": 0.8}
    lines = encode(table, "jsonl").decode().splitlines()
    assert json.loads(lines[1])["prediction"] == 0 and len(lines) == 2
    assert encode(table, "csv").decode().splitlines()[0] == '"customer_id","prediction","model_version","probability_0","probability_1"'
