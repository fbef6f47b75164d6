import gzip
import io
from datetime import date, datetime, timedelta, timezone

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kadence.domain.monitoring.logformat import (
    FeedbackRecord,
    LogFormatError,
    PredictionRecord,
    decode_batch,
    encode_batch,
    feedback_batch_key,
    feedback_frame,
    is_batch_key,
    key_date,
    new_batch_id,
    parse_feedback,
    parse_predictions,
    prediction_batch_key,
    predictions_frame,
)

T0 = datetime(2026, 11, 23, 0, 4, 42, 123456, tzinfo=timezone.utc)


def prediction(request_id="r1", time=T0, **inputs):
    return PredictionRecord(request_id=request_id, time=time, model_version="3",
                            inputs=inputs or {"tenure": 12, "plan": "pro"},
                            outputs={"prediction": 1, "probabilities": [0.2, 0.8]})


def test_a_prediction_key_is_partitioned_by_the_utc_date_and_sorts_by_time():
    key = prediction_batch_key("default", "churn", "3", T0, batch_id=new_batch_id(T0))
    assert key.startswith("predictions/default/churn/3/2026/11/23/20261123T000442123Z-")
    assert key.endswith(".jsonl.gz")
    assert key_date(key) == date(2026, 11, 23)
    later = prediction_batch_key("default", "churn", "3", T0.replace(second=43))
    assert key < later


def test_a_feedback_key_has_no_model_version():
    assert feedback_batch_key("ns", "churn", T0, batch_id="b1") == "feedback/ns/churn/2026/11/23/b1.jsonl.gz"


def test_a_key_segment_with_a_slash_is_refused():
    with pytest.raises(LogFormatError, match="model version"):
        prediction_batch_key("ns", "churn", "3/../x", T0)


def test_a_key_outside_the_layout_is_not_a_batch():
    assert not is_batch_key("predictions/ns/churn/3/readme.txt")
    assert not is_batch_key("predictions/ns/churn/3/2026/13/40/b.jsonl.gz")
    assert key_date("predictions/ns/churn/3/2026/13/40/b.jsonl.gz") is None


def test_a_batch_round_trips_through_gzip_json_lines():
    records = [prediction("r1"), prediction("r2")]
    key = prediction_batch_key("ns", "churn", "3", T0)
    data = encode_batch(records)
    assert gzip.decompress(data).count(b"\n") == 2
    parsed = parse_predictions(key, decode_batch(key, data))
    assert [p.request_id for p in parsed] == ["r1", "r2"]
    assert parsed[0].time == T0.replace(microsecond=123000)
    assert parsed[0].time.utcoffset() == timedelta(0)
    assert decode_batch(key, data)[0]["time"] == "2026-11-23T00:04:42.123Z"


def test_a_parquet_batch_is_read_like_json_lines():
    table = pa.Table.from_pylist([prediction("r1").wire()])
    sink = io.BytesIO()
    pq.write_table(table, sink)
    parsed = parse_predictions("p/2026/11/23/b.parquet", decode_batch("p/2026/11/23/b.parquet", sink.getvalue()))
    assert parsed[0].inputs == {"tenure": 12, "plan": "pro"}


def test_a_record_without_a_time_zone_is_refused_naming_the_record_and_field():
    raw = prediction().wire() | {"time": "2026-11-23T00:00:00"}
    with pytest.raises(LogFormatError, match=r"k record 1: time: .*timezone"):
        parse_predictions("k", [raw])


def test_a_record_missing_its_outputs_is_refused():
    raw = prediction().wire()
    del raw["outputs"]
    with pytest.raises(LogFormatError, match="outputs"):
        parse_predictions("k", [raw])


def test_a_line_that_is_not_json_is_refused_with_its_line_number():
    data = gzip.compress(b'{"requestId": "a"}\nnot json\n')
    with pytest.raises(LogFormatError, match=r"b.jsonl.gz:2: not JSON"):
        decode_batch("b.jsonl.gz", data)


def test_bytes_that_are_not_gzip_are_refused():
    with pytest.raises(LogFormatError, match="not gzip"):
        decode_batch("b.jsonl.gz", b"plain")


def test_an_unknown_suffix_is_refused():
    with pytest.raises(LogFormatError, match="unknown batch format"):
        decode_batch("b.csv", b"")


def test_an_input_called_time_does_not_clash_with_the_log_time():
    log = predictions_frame([PredictionRecord(request_id="a", time=T0, model_version="1",
                                              inputs={"time": 5.0, "prediction": 7},
                                              outputs={"prediction": 0})])
    assert list(log.inputs.columns) == ["time", "prediction"]
    assert log.inputs["time"].tolist() == [5.0]
    assert log.meta["prediction"].tolist() == [0]


def test_the_latest_label_of_a_request_wins():
    records = [
        FeedbackRecord(request_id="a", time=T0.replace(hour=2), label=1),
        FeedbackRecord(request_id="a", time=T0.replace(hour=1), label=0),
        FeedbackRecord(request_id="b", time=T0, label=0),
    ]
    frame = feedback_frame(records)
    assert dict(zip(frame.request_id, frame.label)) == {"a": 1, "b": 0}


def test_a_null_label_is_refused():
    with pytest.raises(LogFormatError, match="label"):
        parse_feedback("k", [{"requestId": "a", "time": "2026-11-23T00:00:00Z", "label": None}])


def test_a_request_logged_twice_counts_once_as_its_latest_record():
    first = prediction("r1", time=T0)
    again = PredictionRecord(request_id="r1", time=T0.replace(second=50), model_version="4",
                             inputs={"tenure": 1}, outputs={"prediction": 0})
    log = predictions_frame([again, first, prediction("r2", time=T0.replace(second=45))])
    assert log.meta["request_id"].tolist() == ["r2", "r1"]
    assert log.meta["model_version"].tolist() == ["3", "4"]


def test_a_time_in_another_zone_is_kept_as_the_same_instant():
    raw = prediction().wire() | {"time": "2026-11-23T01:04:42.123+01:00"}
    parsed = parse_predictions("k", [raw])[0]
    assert parsed.time == T0.replace(microsecond=123000)
    assert predictions_frame([parsed]).meta["time"].iloc[0] == pd.Timestamp("2026-11-23T00:04:42.123Z")
