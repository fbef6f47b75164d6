"""The kadence.dev/appended-data annotation: parsing, appending, formats, digests."""

import json
from datetime import datetime, timedelta, timezone

import pytest

from kadence.domain.data.appended import (
    MAX_APPENDED,
    AppendedData,
    AppendedDataError,
    append_data_annotation,
    appended_digest,
    appended_format,
    appended_uris,
    parse_appended_data,
)

A = "s3://kadence/monitoring/ml/churn/w1/labelled.parquet"
B = "s3://kadence/monitoring/ml/churn/w2/labelled.parquet"
BY = "MonitorPolicy/ml/churn-monitor"
T = "2026-01-01T12:00:00Z"


def entries(value):
    return json.loads(value)


@pytest.mark.parametrize("current, uri, expected", [
    (None, A, [{"uri": A, "addedBy": BY, "time": T}]),
    ("", A, [{"uri": A, "addedBy": BY, "time": T}]),
    (json.dumps([{"uri": A}]), B, [{"uri": A}, {"uri": B, "addedBy": BY, "time": T}]),
    (json.dumps([{"uri": A, "addedBy": "me"}]), A, [{"uri": A, "addedBy": "me"}]),
])
def test_a_uri_is_appended_last_and_only_once(current, uri, expected):
    assert entries(append_data_annotation(current, uri, BY, T)) == expected


def test_appending_the_same_uri_again_changes_nothing():
    once = append_data_annotation(None, A, BY, T)
    assert append_data_annotation(once, A, BY, "2026-02-02T00:00:00Z") == once


def test_a_datetime_is_written_as_rfc3339_in_utc():
    moment = datetime(2026, 1, 1, 13, 0, tzinfo=timezone(timedelta(hours=1)))
    assert entries(append_data_annotation(None, A, BY, moment))[0]["time"] == T


def test_only_the_newest_entries_are_kept():
    value = None
    for index in range(MAX_APPENDED + 3):
        value = append_data_annotation(value, f"s3://kadence/w/{index}.parquet", BY, T)
    uris = appended_uris(value)
    assert len(uris) == MAX_APPENDED
    assert uris[0] == "s3://kadence/w/3.parquet" and uris[-1] == f"s3://kadence/w/{MAX_APPENDED + 2}.parquet"


def test_entries_keep_their_order_and_fields():
    value = json.dumps([{"uri": B, "time": T}, {"uri": A, "addedBy": BY}])
    assert parse_appended_data(value) == [AppendedData(B, None, T), AppendedData(A, BY, None)]


@pytest.mark.parametrize("value, fragment", [
    ("{not json", "is not JSON"),
    (json.dumps({"uri": A}), "must be a JSON list"),
    (json.dumps(["s3://kadence/a.parquet"]), "[0] must be an object with a uri"),
    (json.dumps([{"url": A}]), "[0] has unknown field(s) url"),
    (json.dumps([{"uri": A}, {"uri": "s3://kadence/feedback/"}]), "[1].uri must be one file"),
    (json.dumps([{"uri": "ftp://host/a.csv"}]), "[0].uri must be one file"),
    (json.dumps([{"uri": A, "time": 5}]), "[0].time must be a string"),
    (json.dumps([{"uri": A}, {"uri": A}]), f"lists {A} twice"),
    (json.dumps([{"uri": f"s3://kadence/{i}.csv"} for i in range(MAX_APPENDED + 1)]), "at most 100"),
])
def test_a_malformed_annotation_is_refused_with_what_is_wrong(value, fragment):
    with pytest.raises(AppendedDataError) as error:
        parse_appended_data(value)
    assert fragment in str(error.value) and "kadence.dev/appended-data" in str(error.value)


def test_appending_to_a_malformed_annotation_refuses_rather_than_overwriting_it():
    with pytest.raises(AppendedDataError, match="is not JSON"):
        append_data_annotation("[{", A, BY, T)


def test_appending_a_prefix_instead_of_a_file_is_refused():
    with pytest.raises(AppendedDataError, match="uri must be one file"):
        append_data_annotation(None, "s3://kadence/feedback/", BY, T)


@pytest.mark.parametrize("uri, dataset_format, expected", [
    ("s3://kadence/w/labelled.parquet", "csv", "parquet"),
    ("s3://kadence/w/labelled.PARQUET", "csv", "parquet"),
    ("https://example.com/more.csv?token=x", "parquet", "csv"),
    ("file:///data/more.jsonl", "csv", "jsonl"),
    ("s3://kadence/w/labelled.data", "jsonl", "jsonl"),
])
def test_the_format_comes_from_the_extension_else_the_datasets(uri, dataset_format, expected):
    assert appended_format(uri, dataset_format) == expected


def test_the_digest_changes_with_the_list_and_its_order_only():
    assert appended_digest([A, B]) == appended_digest([A, B])
    assert len({appended_digest([A]), appended_digest([A, B]), appended_digest([B, A])}) == 3
