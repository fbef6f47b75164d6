"""Sources that cannot reach what they should not: http(s) limits and redirects, and no source
content in what reaches status (the ingest result's message and rule results)."""

from __future__ import annotations

import http.server
import json
import threading

import pytest

from kadence.workloads.data_tasks import IngestTask
from kadence.workloads.dataio import SourceError, _download, content_free
from kadence.workloads.ingest_run import ingest

SECRET = "KADENCE_S3_SECRET_KEY=hunter2-very-secret"
SCHEMA = {"target": "churn", "columns": [
    {"name": "age", "type": "float", "min": 0},
    {"name": "plan", "type": "category", "allowedValues": ["basic", "pro"]},
    {"name": "email", "type": "string", "regex": ".+@.+"},
    {"name": "churn", "type": "int"},
]}


def run(inline: str, quality=None):
    task = IngestTask.model_validate({"namespace": "team-a", "name": "leaky", "spec": {
        "source": {"inline": inline}, "format": "csv", "schema": SCHEMA, "quality": quality or {"minRows": 1}}})
    result = ingest(task, None, write=False)
    return json.dumps(result.model_dump(by_alias=True, mode="json")), result


@pytest.mark.parametrize("inline", [
    # a file read through file:///proc/self/environ: its first line is the header
    f"{SECRET}\x00PATH=/usr/bin\x00HOME=/root\n1,2\n",
    f"age,plan,email,churn\n{SECRET},pro,a@b,0\n",  # a value that is not a float
    f"age,plan,email,churn\n1,{SECRET},a@b,0\n",  # a value outside allowedValues
    f"age,plan,email,churn\n1,pro,{SECRET},0\n",  # a value that does not match the regex
    f"age,plan,email,churn\n1,pro,a@b,0\n2,pro,a@b,{SECRET}\n",  # the target
    f"age,plan,email,churn,{SECRET}\n1,pro,a@b,0\n",  # an undeclared header cell
], ids=["an environ file as a CSV header", "a bad float", "a value outside allowedValues", "a regex mismatch",
        "a bad target value", "an extra header cell"])
def test_nothing_a_source_holds_reaches_the_result_but_declared_column_names(inline):
    text, result = run(inline, quality={"minRows": 1, "classBalance": {"minFraction": 0.4}})
    assert result.outcome in ("Invalid", "Error", "Valid")
    assert "hunter2" not in text and "KADENCE_S3_SECRET_KEY" not in text and "PATH=" not in text


def test_a_missing_column_is_named_without_echoing_the_header():
    text, result = run(f"{SECRET},x\n1,2\n")
    assert result.failed_rules == ["schema[columns]"]
    assert "missing column(s) age, plan, email, churn (the file's header has 2 columns)" in result.message
    assert "hunter2" not in text


@pytest.mark.parametrize("message, expected", [
    ("In CSV column #1: Row #3: CSV conversion error to double: invalid value 'x=1'",
     "In CSV column #1: Row #3: CSV conversion error to double: invalid value"),
    ("CSV parse error: Expected 3 columns, got 1: secret,row", "CSV parse error: Expected 3 columns, got 1"),
    ('Unknown datetime string format, unable to parse: TOKEN=1, at position 0',
     "Unknown datetime string format, unable to parse"),
    ("line one\nline two with secret", "line one"),
], ids=["a quoted value", "a row after got N", "a value after unable to parse", "only the first line"])
def test_a_parsers_message_keeps_its_words_and_loses_the_files_text(message, expected):
    assert content_free(message) == expected


class Handler(http.server.BaseHTTPRequestHandler):
    routes: dict = {}

    def do_GET(self):  # noqa: N802 - http.server's name
        status, headers, body = self.routes.get(self.path, (404, {}, b"no such thing: " + SECRET.encode()))
        self.send_response(status, "Reason " + SECRET)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    Handler.routes = {
        "/data.csv": (200, {}, b"a,b\n1,2\n"),
        "/big.csv": (200, {}, b"x" * 5000),
        "/same-host": (302, {"Location": "/data.csv"}, b""),
        "/other-host": (302, {"Location": f"http://localhost:{httpd.server_address[1]}/data.csv"}, b""),
        "/other-scheme": (302, {"Location": "file:///etc/passwd"}, b""),
        "/loop": (302, {"Location": "/loop"}, b""),
    }
    yield base
    httpd.shutdown()


def test_a_download_follows_a_redirect_on_its_own_host(server, tmp_path):
    _download(server + "/same-host", tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == b"a,b\n1,2\n"


@pytest.mark.parametrize("path, message", [
    ("/other-host", "a redirect to another host (localhost) was refused"),
    ("/other-scheme", "a redirect to another scheme (file) was refused"),
    ("/loop", "too many redirects (at most 5)"),
    ("/missing", "HTTP status 404"),
], ids=["another host", "another scheme", "a redirect loop", "an error status without the server's text"])
def test_a_download_refuses_redirects_away_and_never_repeats_the_servers_text(server, tmp_path, path, message):
    with pytest.raises(SourceError) as error:
        _download(server + path, tmp_path / "out")
    assert str(error.value) == message or message in str(error.value)
    assert "hunter2" not in str(error.value)


def test_a_redirect_to_a_listed_host_is_followed(server, tmp_path, monkeypatch):
    monkeypatch.setenv("KADENCE_HTTP_ALLOW_REDIRECT_HOSTS", "localhost")
    _download(server + "/other-host", tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == b"a,b\n1,2\n"


def test_a_download_larger_than_the_cap_is_refused_and_nothing_is_left(server, tmp_path, monkeypatch):
    monkeypatch.setenv("KADENCE_HTTP_MAX_BYTES", "1000")
    with pytest.raises(SourceError, match="the download is 5000 bytes; the limit is 1000"):
        _download(server + "/big.csv", tmp_path / "out")
    assert not (tmp_path / "out").exists()
