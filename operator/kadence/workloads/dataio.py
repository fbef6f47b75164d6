"""Reading Dataset sources file by file and batch by batch, typed by the schema.

Sources are fetched one file at a time into a work directory (S3 objects and HTTP
bodies are streamed to disk, never held in memory), read with pyarrow's streaming readers
in record batches (CSV and JSONL in blocks of BLOCK_SIZE bytes, Parquet in batches of
PARQUET_BATCH_ROWS rows), cast to the schema's canonical Arrow types, and the local copy is
deleted before the next file is fetched. (A whole-file multi-threaded CSV parse was measured
too: no faster end to end on two cores, and its memory grows with the file.)

A declared column missing from a CSV header or Parquet schema fails schema[columns]; JSON
lines often leave out null fields, so there a missing field reads as a missing value (which
the nullable and maxMissingFraction rules judge). Undeclared columns are ignored. Appended
files (the feedback exports of the MonitorPolicies in the Dataset's spec.feedback.from: the
logged inputs plus the target) are read with `missing_as_null`: any declared
column they lack reads as missing values, whatever their format.

Canonical types: float -> float64, int -> int64, bool -> bool, category/string -> string,
datetime -> timestamp[us, UTC] (ISO-8601 text; a value without an offset is read as UTC).
In pandas they become float64, Int64, boolean, str and datetime64[us, UTC].
"""

from __future__ import annotations

import queue
import re
import shutil
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator
from urllib.parse import unquote, urlparse

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from ..settings import Settings

if TYPE_CHECKING:
    from ..storage import ObjectStore

BLOCK_SIZE = 32 << 20
PARQUET_BATCH_ROWS = 262_144
# http(s) sources: bounded in size, time and redirects (a source must not turn a Job into a
# proxy to somewhere else, nor fill its scratch volume). Overridable per Job by environment.
HTTP_MAX_BYTES = 2 << 30  # KADENCE_HTTP_MAX_BYTES
HTTP_TIMEOUT_S = 30  # connect, and each read (KADENCE_HTTP_TIMEOUT_SECONDS)
HTTP_DEADLINE_S = 1800  # the whole download (KADENCE_HTTP_DEADLINE_SECONDS)
HTTP_MAX_REDIRECTS = 5
ALLOW_REDIRECT_HOSTS_ENV = "KADENCE_HTTP_ALLOW_REDIRECT_HOSTS"  # comma-separated hosts a redirect may go to

ARROW_TYPES = {
    "float": pa.float64(),
    "int": pa.int64(),
    "bool": pa.bool_(),
    "category": pa.string(),
    "string": pa.string(),
    "datetime": pa.timestamp("us", tz="UTC"),
}
_PANDAS_TYPES = {pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype()}
TRUE_VALUES = ["true", "True", "TRUE", "1", "yes", "Yes", "YES"]
FALSE_VALUES = ["false", "False", "FALSE", "0", "no", "No", "NO"]


class SchemaProblem(Exception):
    """The data does not fit the schema; carries the rule name (schema[columns] or schema[types])."""

    def __init__(self, rule: str, message: str):
        super().__init__(message)
        self.rule = rule
        self.message = message


class SourceError(Exception):
    """The source cannot be read at all."""


def arrow_schema(columns: list[tuple[str, str]]) -> pa.Schema:
    return pa.schema([pa.field(name, ARROW_TYPES[kind]) for name, kind in columns])


def to_pandas(batch: pa.RecordBatch | pa.Table) -> pd.DataFrame:
    """The canonical pandas form of a snapshot batch (nullable ints and bools stay typed)."""
    return batch.to_pandas(types_mapper=_PANDAS_TYPES.get)


# -- fetching ---------------------------------------------------------------------------

def _source_store(bucket: str, store: ObjectStore | None) -> ObjectStore:
    from ..storage import ObjectStore, StorageConfig  # minio only for s3:// sources

    source_s3 = Settings.from_env().source_s3  # a Dataset's own S3 credentials (KADENCE_SOURCE_S3_*)
    if source_s3.get("KADENCE_S3_ENDPOINT"):
        return ObjectStore(replace(StorageConfig.from_env(source_s3), bucket=bucket))
    if store is None:
        raise SourceError("an s3:// source needs object storage: set KADENCE_S3_ENDPOINT and its keys")
    return _bucket_store(store, bucket)


def _bucket_store(store: ObjectStore, bucket: str) -> ObjectStore:
    """`store`'s endpoint and credentials, for another bucket."""
    from ..storage import ObjectStore

    if store.bucket == bucket:
        return store
    return ObjectStore(replace(store.config, bucket=bucket), client=store.client)


def _skipped(name: str) -> bool:
    base = name.rstrip("/").rsplit("/", 1)[-1]
    return not base or base.startswith(("_", "."))


def fetch_sources(uri: str | None, inline: str | None, store: ObjectStore | None,
                  workdir: Path) -> Iterator[tuple[str, Path]]:
    """Yield (source name, local path) one file at a time; a downloaded file is deleted when
    the caller asks for the next one."""
    if uri is None:
        if inline is None:
            raise SourceError("the source has no data: neither uri nor inline data is set")
        path = workdir / "inline.data"
        path.write_text(inline, encoding="utf-8")
        yield "inline", path
        path.unlink(missing_ok=True)
        return
    scheme = urlparse(uri).scheme
    if scheme == "file":
        yield from _file_sources(Path(unquote(urlparse(uri).path)))
    elif scheme in ("http", "https"):
        path = workdir / "download.data"
        try:
            _download(uri, path)
        except SourceError as error:
            raise SourceError(f"cannot download {uri}: {error}") from None
        yield uri, path
        path.unlink(missing_ok=True)
    elif scheme == "s3":
        yield from _s3_sources(uri, store, workdir)
    else:
        raise SourceError(f"unsupported source scheme {scheme!r} in {uri}")


class _RedirectPolicy(urllib.request.HTTPRedirectHandler):
    """At most HTTP_MAX_REDIRECTS redirects, each to the same scheme and host as the URL the
    user wrote (or to a host listed in $KADENCE_HTTP_ALLOW_REDIRECT_HOSTS; never http<->https)."""

    max_redirections = HTTP_MAX_REDIRECTS

    def __init__(self, origin: str, allowed_hosts: set[str]):
        self.origin = urlparse(origin)
        self.allowed_hosts = allowed_hosts

    def http_error_302(self, req, fp, code, msg, headers):
        from urllib.parse import urljoin

        location = headers.get("location") or headers.get("uri")
        if location:
            self._check(urljoin(req.full_url, location))
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        self._check(newurl)
        return super().redirect_request(req, fp, code, msg, headers, newurl)

    def _check(self, newurl: str) -> None:
        target = urlparse(newurl)
        if target.scheme != self.origin.scheme:
            raise SourceError(f"a redirect to another scheme ({target.scheme or 'none'}) was refused")
        if target.hostname != self.origin.hostname and target.hostname not in self.allowed_hosts:
            raise SourceError(f"a redirect to another host ({target.hostname}) was refused; "
                              f"allow it with {ALLOW_REDIRECT_HOSTS_ENV}")




def _download(url: str, path: Path) -> None:
    """Stream `url` to `path` within the size cap, the per-read timeout, the overall deadline and
    the redirect policy. Raises SourceError naming the limit (never the server's text)."""
    settings = Settings.from_env()
    max_bytes = settings.http_max_bytes or HTTP_MAX_BYTES
    timeout = settings.http_timeout_seconds or HTTP_TIMEOUT_S
    deadline = time.monotonic() + (settings.http_deadline_seconds or HTTP_DEADLINE_S)
    allowed = set(settings.http_allow_redirect_hosts)
    opener = urllib.request.build_opener(_RedirectPolicy(url, allowed))
    try:
        with opener.open(url, timeout=timeout) as response, open(path, "wb") as out:
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise SourceError(f"the download is {int(declared)} bytes; the limit is {max_bytes} "
                                  "(KADENCE_HTTP_MAX_BYTES)")
            written = 0
            read = getattr(response, "read1", response.read)  # what has arrived, not a full MiB: the deadline holds
            while chunk := read(1 << 20):
                written += len(chunk)
                if written > max_bytes:
                    raise SourceError(f"the download exceeds the limit of {max_bytes} bytes (KADENCE_HTTP_MAX_BYTES)")
                if time.monotonic() > deadline:
                    raise SourceError("the download did not finish within its deadline "
                                      "(KADENCE_HTTP_DEADLINE_SECONDS)")
                out.write(chunk)
    except urllib.error.HTTPError as error:
        # the status code only: the reason phrase and body are the server's text
        if 300 <= error.code < 400:
            raise SourceError(f"too many redirects (at most {HTTP_MAX_REDIRECTS}) or a redirect without a "
                              f"location (HTTP status {error.code})") from None
        raise SourceError(f"HTTP status {error.code}") from None
    except urllib.error.URLError as error:
        if isinstance(error.reason, SourceError):
            raise error.reason from None
        raise SourceError(f"cannot connect: {type(error.reason).__name__}") from None
    except SourceError:
        path.unlink(missing_ok=True)
        raise
    except (TimeoutError, OSError) as error:
        path.unlink(missing_ok=True)
        raise SourceError(f"the download failed: {type(error).__name__}") from None


def fetch_appended(uri: str, store: ObjectStore | None, workdir: Path) -> Path:
    """One appended file as a local path (the caller deletes it). s3:// objects are read with
    Kadence's own storage credentials, since Kadence wrote them (a source's credentialsSecret
    is for the source only). Raises SourceError with the cause, without the URI."""
    scheme = urlparse(uri).scheme
    path = workdir / ("appended" + "".join(Path(urlparse(uri).path).suffixes[-2:]))
    if scheme == "file":
        local = Path(unquote(urlparse(uri).path))
        if not local.is_file():
            raise SourceError("no such file")
        return local
    if scheme in ("http", "https"):
        try:
            _download(uri, path)
        except SourceError as error:
            raise SourceError(f"cannot download: {error}") from None
        return path
    if scheme != "s3":
        raise SourceError(f"unsupported scheme {scheme!r}")
    if store is None:
        raise SourceError("an s3:// file needs object storage: set KADENCE_S3_ENDPOINT and its keys")
    from minio.error import S3Error

    from ..storage import split_s3_uri

    bucket, key = split_s3_uri(uri)
    try:
        _bucket_store(store, bucket).get_file(key, str(path))
    except S3Error as error:
        missing = error.code in ("NoSuchKey", "NoSuchBucket", "NoSuchObject")
        raise SourceError("no such object" if missing else f"cannot download: {error}") from None
    except OSError as error:
        raise SourceError(f"cannot download: {error}") from None
    return path


def _file_sources(path: Path) -> Iterator[tuple[str, Path]]:
    if path.is_file():
        yield path.as_uri(), path
        return
    if not path.is_dir():
        raise SourceError(f"no such file or directory: {path}")
    files = sorted(p for p in path.rglob("*") if p.is_file() and not _skipped(str(p.relative_to(path))))
    if not files:
        raise SourceError(f"the directory {path} holds no data files")
    for file in files:
        yield file.as_uri(), file


def source_file_uris(uri: str | None, store: ObjectStore | None) -> list[str | None]:
    """The files of a source, as URIs that `fetch_sources` fetches one by one, without reading them:
    an s3:// prefix's objects, a file:/// directory's files; an http(s) URL or inline data (None) as is."""
    if uri is None or urlparse(uri).scheme in ("http", "https"):
        return [uri]
    if urlparse(uri).scheme == "file":
        return [name for name, _ in _file_sources(Path(unquote(urlparse(uri).path)))]
    if urlparse(uri).scheme != "s3":
        raise SourceError(f"unsupported source scheme {urlparse(uri).scheme!r} in {uri}")
    source, keys = _s3_keys(uri, store)
    return [source.uri(key) for key in keys]


def _s3_keys(uri: str, store: ObjectStore | None) -> tuple[ObjectStore, list[str]]:
    from ..storage import split_s3_uri

    bucket, key = split_s3_uri(uri)
    source = _source_store(bucket, store)
    if key and not key.endswith("/") and source.exists(key):
        keys = [key]
    else:
        prefix = key if not key or key.endswith("/") else key + "/"
        try:
            keys = sorted(k for k in source.list_keys(prefix) if not _skipped(k[len(prefix):]))
        except Exception as error:  # minio raises S3Error for a missing bucket, urllib3 errors for the network
            raise SourceError(f"cannot list {uri}: {error}") from None
        if not keys:
            raise SourceError(f"no object or files under {uri}")
    return source, keys


def _s3_sources(uri: str, store: ObjectStore | None, workdir: Path) -> Iterator[tuple[str, Path]]:
    source, keys = _s3_keys(uri, store)
    for index, object_key in enumerate(keys):
        path = workdir / f"object-{index}{''.join(Path(object_key).suffixes[-2:])}"
        try:
            source.get_file(object_key, str(path))
        except Exception as error:
            raise SourceError(f"cannot download {source.uri(object_key)}: {error}") from None
        yield source.uri(object_key), path
        path.unlink(missing_ok=True)


# -- reading ----------------------------------------------------------------------------

def read_batches(path: Path, data_format: str, columns: list[tuple[str, str]],
                 missing_as_null: bool = False) -> Iterator[pa.RecordBatch]:
    """Typed record batches of one local file, declared columns only, in schema order. A
    declared column the file lacks fails schema[columns], or reads as nulls with `missing_as_null`.
    A file that is not in `data_format` at all (a Parquet file without its footer) raises SourceError."""
    try:
        if data_format == "csv":
            raw = _csv_batches(path, columns, missing_as_null)
        elif data_format == "jsonl":
            raw = _jsonl_batches(path, columns)
        elif data_format == "parquet":
            raw = _parquet_batches(path, columns, missing_as_null)
        else:
            raise SourceError(f"unsupported format {data_format!r}")
        for batch in raw:
            yield _canonical(batch, columns, missing_as_null)
    except pa.ArrowInvalid as error:
        raise SchemaProblem("schema[types]", _arrow_message(error)) from None


_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_TRAILING_CONTENT = re.compile(r"(got \d+|unable to parse|invalid value|Failed to parse string)\b.*$", re.IGNORECASE)
_UNSAFE = re.compile(r"[^A-Za-z0-9 #.,:()_\-]")


def content_free(text: str, limit: int = 160) -> str:
    """A parser's message without the file's content in it: its first line, quoted values and
    whatever follows "got N" / "unable to parse" / "invalid value" cut, odd characters dropped.
    Status, conditions and Events carry only this and declared column names."""
    line = (str(text).strip().splitlines() or [""])[0]
    line = _QUOTED.sub("…", line)
    line = _TRAILING_CONTENT.sub(lambda m: m.group(1), line)
    line = _UNSAFE.sub("", line.replace("…", "(value)")).strip()
    return line[:limit]


def _arrow_message(error: Exception) -> str:
    return content_free(str(error))


def _csv_batches(path: Path, columns: list[tuple[str, str]], missing_as_null: bool) -> Iterator[pa.RecordBatch]:
    names = [name for name, _ in columns]
    convert = pacsv.ConvertOptions(
        column_types={name: (pa.string() if kind == "datetime" else ARROW_TYPES[kind]) for name, kind in columns},
        include_columns=names,
        include_missing_columns=missing_as_null,
        strings_can_be_null=True,
        true_values=TRUE_VALUES,
        false_values=FALSE_VALUES,
    )
    try:
        reader = pacsv.open_csv(str(path), read_options=pacsv.ReadOptions(block_size=BLOCK_SIZE),
                                convert_options=convert)
    except (pa.ArrowInvalid, KeyError) as error:
        message = _arrow_message(error)
        if "include_columns" in message or "does not exist" in message:
            header = _csv_header(path)
            missing = [n for n in names if n not in header]
            # declared names only: the header line itself is the file's content
            raise SchemaProblem("schema[columns]", f"missing column(s) {', '.join(missing)} "
                                f"(the file's header has {len(header)} columns)") from None
        raise
    yield from reader


def _csv_header(path: Path) -> list[str]:
    """The column names of a CSV file (reads its first block only)."""
    try:
        return pacsv.open_csv(str(path), read_options=pacsv.ReadOptions(block_size=1 << 16)).schema.names
    except pa.ArrowInvalid:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.readline().strip().split(",")


def _jsonl_batches(path: Path, columns: list[tuple[str, str]]) -> Iterator[pa.RecordBatch]:
    schema = pa.schema([pa.field(n, pa.string() if k in ("datetime",) else ARROW_TYPES[k]) for n, k in columns])
    parse = pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    reader = pajson.open_json(str(path), read_options=pajson.ReadOptions(block_size=BLOCK_SIZE), parse_options=parse)
    yield from reader


def _parquet_batches(path: Path, columns: list[tuple[str, str]], missing_as_null: bool) -> Iterator[pa.RecordBatch]:
    try:
        file = pq.ParquetFile(str(path))
    except (pa.ArrowInvalid, OSError) as error:
        raise SourceError(f"not a readable Parquet file: {_arrow_message(error)}") from None
    present = file.schema_arrow.names
    missing = [name for name, _ in columns if name not in present]
    if missing and not missing_as_null:
        raise SchemaProblem("schema[columns]",
                            f"missing column(s) {', '.join(missing)} (the file has {len(present)} columns)")
    # with no declared column present the batches have none, yet keep their row counts
    wanted = [name for name, _ in columns if name in present]
    yield from file.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=wanted)


def _canonical(batch: pa.RecordBatch, columns: list[tuple[str, str]], missing_as_null: bool = False) -> pa.RecordBatch:
    arrays = []
    for name, kind in columns:
        index = batch.schema.get_field_index(name)
        if index < 0 and missing_as_null:
            arrays.append(pa.nulls(batch.num_rows, ARROW_TYPES[kind]))
            continue
        if index < 0:
            raise SchemaProblem("schema[columns]", f"missing column {name}")
        array = batch.column(index)
        target = ARROW_TYPES[kind]
        if array.type == target:
            arrays.append(array)
        elif kind == "datetime":
            arrays.append(_timestamps(name, array))
        else:
            try:
                arrays.append(array.cast(target))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
                raise SchemaProblem("schema[types]", f"column {name!r} does not hold {kind} values: "
                                    f"{_arrow_message(error)}") from None
    return pa.RecordBatch.from_arrays(arrays, schema=arrow_schema(columns))


def _timestamps(name: str, array: pa.Array) -> pa.Array:
    if pa.types.is_timestamp(array.type):
        series = array.to_pandas()
        series = series.dt.tz_localize("UTC") if series.dt.tz is None else series.dt.tz_convert("UTC")
    else:
        fast = _arrow_timestamps(array)
        if fast is not None:
            return fast
        text = array.cast(pa.string()).to_pandas()
        try:
            series = pd.to_datetime(text, utc=True, format="ISO8601")
        except (ValueError, TypeError) as error:
            raise SchemaProblem("schema[types]", f"column {name!r} does not hold ISO-8601 datetimes: "
                                f"{content_free(str(error))}") from None
    return pa.array(series.astype("datetime64[us, UTC]"), type=ARROW_TYPES["datetime"])


def _arrow_timestamps(array: pa.Array) -> pa.Array | None:
    """Arrow's own ISO-8601 parser, when every value of the batch has an offset or none has
    (values without one are UTC); None when the batch mixes them or needs pandas' parser."""
    utc = ARROW_TYPES["datetime"]
    for target in (pa.timestamp("us"), utc):
        try:
            return array.cast(target).cast(utc)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
    return None


def numeric_arrays(batch: pa.RecordBatch, names: list[str]) -> dict:
    """float64 numpy arrays (missing -> NaN) of numeric/bool columns, without pandas."""
    out = {}
    for name in names:
        column = batch.column(batch.schema.get_field_index(name))
        out[name] = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
    return out


class BackgroundParquetWriter:
    """Writes record batches to a Parquet file on a thread of its own: pyarrow releases the GIL
    while it encodes and compresses, so writing overlaps with validating and profiling."""

    def __init__(self, path: Path, schema: Any):
        # dictionary encoding pays off for text; for floats it costs more time than it saves space
        text = [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
        # byte-stream-split floats: cheaper to compress than plain, as small (measured on 1M x 20)
        floats = [f.name for f in schema if pa.types.is_floating(f.type)]
        self._writer = pq.ParquetWriter(str(path), schema, compression="snappy", use_dictionary=text,
                                        use_byte_stream_split=floats or False)
        self._queue: queue.Queue = queue.Queue(maxsize=2)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, name="parquet-writer", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while (batch := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._writer.write_batch(batch)
                except BaseException as error:  # noqa: BLE001 - handed to the caller in close()
                    self._error = error

    def write_batch(self, batch: Any) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(batch)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        self._writer.close()
        if self._error is not None:
            raise self._error

    def __enter__(self) -> "BackgroundParquetWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def make_workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="kadence-data-"))


def file_sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


__all__ = ["SchemaProblem", "SourceError", "arrow_schema", "fetch_sources", "file_sha256", "make_workdir",
           "read_batches", "to_pandas"]
