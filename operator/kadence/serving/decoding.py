"""Turn request bodies of both protocols into typed columns, and predictions into responses.

Pure functions: no I/O, no server. Every refusal raises `InputError` with a message
that names the place (`instances[2].age`, `inputs[0] 'plan' data[3]`) and the reason.

Columns are NumPy arrays keyed by the model's raw column names:
float -> float64, int -> int64 (float64 with NaN when a value is missing), bool -> bool
(object when nullable), string/category -> object (str), datetime -> datetime64[ns].
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass, field
from collections.abc import Mapping
from typing import Any, Sequence

import numpy as np

from .task import ServeColumn



class Columns(Mapping):
    """Typed arrays by column name. When every column is float and the rows arrived as one
    block, `matrix` holds them as one float64 [rows, columns] array in signature order and
    the columns are views made on first use, so the fast paths never split and re-stack it."""

    def __init__(self, arrays=(), matrix: np.ndarray | None = None, index: dict[str, int] | None = None):
        self._arrays: dict[str, np.ndarray] = dict(arrays)
        self.matrix = matrix
        self._index = index if matrix is not None else {}

    @classmethod
    def of_matrix(cls, matrix: np.ndarray, columns: Sequence[ServeColumn]) -> "Columns":
        return cls(matrix=matrix, index=_column_index(tuple(c.name for c in columns)))

    def __getitem__(self, name: str) -> np.ndarray:
        array = self._arrays.get(name)
        if array is None:
            array = self._arrays[name] = self.matrix[:, self._index[name]]
        return array

    def __setitem__(self, name: str, array: np.ndarray) -> None:
        self._arrays[name] = array

    def __iter__(self):
        return iter(self._index or self._arrays)

    def __len__(self) -> int:
        return len(self._index or self._arrays)

    def __contains__(self, name) -> bool:
        return name in self._index or name in self._arrays

    def __repr__(self) -> str:
        return f"Columns({dict(self)!r})"


@functools.lru_cache(maxsize=64)
def _column_index(names: tuple[str, ...]) -> dict[str, int]:
    return {name: j for j, name in enumerate(names)}


NUMERIC_TYPES = ("float", "int")

FLOAT_DATATYPES = ("FP16", "FP32", "FP64")
INT_DATATYPES = ("INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64")
V2_DATATYPES = ("BOOL", *INT_DATATYPES, *FLOAT_DATATYPES, "BYTES")

# Which v2 datatypes each column type accepts.
ACCEPTED_DATATYPES = {
    "float": FLOAT_DATATYPES + INT_DATATYPES,
    "int": INT_DATATYPES,
    "bool": ("BOOL",),
    "string": ("BYTES",),
    "category": ("BYTES",),
    "datetime": ("BYTES",),
}
# The datatype a column type is advertised with in metadata.
DATATYPE_OF_COLUMN = {"float": "FP64", "int": "INT64", "bool": "BOOL", "string": "BYTES",
                      "category": "BYTES", "datetime": "BYTES"}


class InputError(ValueError):
    """A request the model cannot take; the message says exactly why."""


def describe(value: Any) -> str:
    """A short rendering of a bad value for an error message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"string {shown!r}"
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)}"
    if isinstance(value, dict):
        return "an object"
    return repr(value)


# ---------------------------------------------------------------- one column


def _is_number(value: Any) -> bool:
    return type(value) is float or type(value) is int


def _problem(column: ServeColumn, value: Any) -> str | None:
    """Why `value` cannot go into `column`, or None when it can."""
    kind = column.type
    if value is None or (type(value) is float and math.isnan(value)):
        return None if column.nullable else f"missing value ({describe(value) if value is None else 'NaN'}) is not allowed in column {column.name!r}"
    if kind == "float":
        if not _is_number(value):
            return f"expected a number, got {describe(value)}"
        if type(value) is float and math.isinf(value):
            return "expected a finite number, got infinity"
        return None
    if kind == "int":
        if type(value) is int:
            return None
        if type(value) is float and value.is_integer():
            return None
        return f"expected an integer, got {describe(value)}"
    if kind == "bool":
        return None if type(value) is bool else f"expected true or false, got {describe(value)}"
    if kind == "datetime":
        if type(value) is not str:
            return f"expected an ISO 8601 date-time string, got {describe(value)}"
        try:
            np.datetime64(value.removesuffix("Z"), "ns")
        except ValueError:
            return f"expected an ISO 8601 date-time string, got {describe(value)}"
        return None
    return None if type(value) is str else f"expected a string, got {describe(value)}"


def first_problem(column: ServeColumn, values: Sequence[Any]) -> tuple[int, str] | None:
    for index, value in enumerate(values):
        problem = _problem(column, value)
        if problem is not None:
            return index, problem
    return None


def to_array(column: ServeColumn, values: Sequence[Any]) -> np.ndarray:
    """The typed array of already-checked values."""
    kind = column.type
    if kind == "float":
        return np.array([math.nan if v is None else v for v in values], dtype=np.float64)
    if kind == "int":
        if column.nullable and any(v is None for v in values):
            return np.array([math.nan if v is None else v for v in values], dtype=np.float64)
        return np.array(values, dtype=np.int64)
    if kind == "bool":
        if column.nullable and any(v is None for v in values):
            return np.array(values, dtype=object)
        return np.array(values, dtype=bool)
    if kind == "datetime":
        return np.array([np.datetime64("NaT") if v is None else np.datetime64(v.removesuffix("Z"), "ns")
                         for v in values], dtype="datetime64[ns]")
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


# Column types whose values, when all of these Python types, convert in one NumPy call.
_FAST_TYPES = {"float": {float, int}, "int": {int}, "bool": {bool}, "string": {str}, "category": {str}}


def _fast_array(column: ServeColumn, values: Sequence[Any]) -> np.ndarray | None:
    """The array when every value plainly fits (checked at C speed), else None for the careful path."""
    allowed = _FAST_TYPES.get(column.type)
    if allowed is None or not set(map(type, values)) <= allowed:
        return None
    kind = column.type
    if kind == "float":
        array = np.array(values, dtype=np.float64)
        return array if np.isfinite(array).all() else None
    if kind == "int":
        try:
            return np.array(values, dtype=np.int64)
        except OverflowError:
            return None
    if kind == "bool":
        return np.array(values, dtype=bool)
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def coerce(column: ServeColumn, values: Sequence[Any], place) -> np.ndarray:
    """Check and convert one column; `place(row)` names row `row` in an error."""
    fast = _fast_array(column, values)
    if fast is not None:
        return fast
    found = first_problem(column, values)
    if found is not None:
        row, problem = found
        raise InputError(f"{place(row)}: {problem}")
    return to_array(column, values)


def _expected(columns: Sequence[ServeColumn]) -> str:
    names = [c.name for c in columns]
    shown = ", ".join(names[:30]) + (f", … ({len(names)} in all)" if len(names) > 30 else "")
    return shown


# ---------------------------------------------------------------- KServe v1


def declared_rows(body: Any, protocol: str) -> int:
    """How many rows a parsed request claims, before anything is decoded (0 when its form is
    not recognisable; the decoder then says what is wrong). v1: the length of `instances` or of
    the row list under `inputs`, or the longest column of columnar `inputs`. v2: the largest
    first dimension among the tensors' shapes and their data (a shape may understate it)."""
    if not isinstance(body, dict):
        return 0
    if protocol == "v1":
        rows = body.get("instances", body.get("inputs"))
        if isinstance(rows, dict):
            return max((len(v) for v in rows.values() if isinstance(v, list)), default=0)
        return len(rows) if isinstance(rows, list) else 0
    tensors = body.get("inputs")
    if not isinstance(tensors, list):
        return 0
    rows = 0
    for tensor in tensors:
        if not isinstance(tensor, dict):
            continue
        shape, data = tensor.get("shape"), tensor.get("data")
        width = 1
        if isinstance(shape, list) and shape and all(type(d) is int for d in shape):
            rows = max(rows, shape[0])
            width = max(1, math.prod(shape[1:]))
        if isinstance(data, list):
            nested = bool(data) and isinstance(data[0], list)
            rows = max(rows, len(data) if nested else len(data) // width)
    return rows


def decode_v1(body: Any, columns: Sequence[ServeColumn]) -> tuple[Columns, int]:
    """`{"instances": [...]}` (rows as lists in column order or as objects by column name),
    or `{"inputs": ...}` (the same rows, or one list per column name)."""
    if not isinstance(body, dict):
        raise InputError(f"the request body must be a JSON object with \"instances\", got {describe(body)}")
    if "instances" in body and "inputs" in body:
        raise InputError('send either "instances" or "inputs", not both')
    if "instances" in body:
        return _decode_rows(body["instances"], columns, "instances")
    if "inputs" in body:
        inputs = body["inputs"]
        if isinstance(inputs, dict):
            return _decode_columnar(inputs, columns, "inputs")
        return _decode_rows(inputs, columns, "inputs")
    raise InputError('the request body has no "instances" (a list of rows)')


def _decode_rows(rows: Any, columns: Sequence[ServeColumn], field_name: str) -> tuple[Columns, int]:
    if not isinstance(rows, list):
        raise InputError(f'"{field_name}" must be a list of rows, got {describe(rows)}')
    if not rows:
        raise InputError(f'"{field_name}" is empty; send at least one row')
    width = len(columns)
    first = rows[0]
    if isinstance(first, dict):
        names = [c.name for c in columns]
        expected = set(names)
        for index, row in enumerate(rows):
            if not isinstance(row, dict):
                raise InputError(f"{field_name}[{index}] is {describe(row)}, but {field_name}[0] is an object; use one form for all rows")
            if row.keys() != expected:
                unknown = [k for k in row if k not in expected]
                if unknown:
                    raise InputError(f"{field_name}[{index}]: unknown column {unknown[0]!r} (expected: {_expected(columns)})")
                missing = [n for n in names if n not in row]
                raise InputError(f"{field_name}[{index}]: missing column {missing[0]!r}")
        decoded = Columns(
            (c.name, coerce(c, [row[c.name] for row in rows], lambda i, c=c: f"{field_name}[{i}].{c.name}"))
            for c in columns
        )
        return decoded, len(rows)
    if isinstance(first, list):
        for index, row in enumerate(rows):
            if not isinstance(row, list):
                raise InputError(f"{field_name}[{index}] is {describe(row)}, but {field_name}[0] is a list; use one form for all rows")
            if len(row) != width:
                raise InputError(f"{field_name}[{index}] has {len(row)} values; the model takes {width} ({_expected(columns)})")
        if all(c.type == "float" for c in columns):
            matrix = _float_matrix(rows)
            if matrix is not None:
                return Columns.of_matrix(matrix, columns), len(rows)
        by_column = list(zip(*rows))
        decoded = Columns(
            (c.name, coerce(c, by_column[j], lambda i, c=c, j=j: f"{field_name}[{i}][{j}] (column {c.name!r})"))
            for j, c in enumerate(columns)
        )
        return decoded, len(rows)
    if width == 1:
        c = columns[0]
        return Columns({c.name: coerce(c, rows, lambda i: f"{field_name}[{i}] (column {c.name!r})")}), len(rows)
    raise InputError(
        f"{field_name}[0] is {describe(first)}; each row must be a list of {width} values or an object keyed by column name"
    )


def _float_matrix(rows: list[list]) -> np.ndarray | None:
    """Rows of plain finite numbers as one float64 matrix (the common all-numeric case), else None."""
    if not set(map(type, itertools.chain.from_iterable(rows))) <= {float, int}:
        return None
    matrix = np.array(rows, dtype=np.float64)
    return matrix if np.isfinite(matrix).all() else None


def _decode_columnar(data: dict, columns: Sequence[ServeColumn], field_name: str) -> tuple[Columns, int]:
    names = {c.name for c in columns}
    for key in data:
        if key not in names:
            raise InputError(f"{field_name}: unknown column {key!r} (expected: {_expected(columns)})")
    decoded = Columns()
    rows = None
    for c in columns:
        if c.name not in data:
            raise InputError(f"{field_name}: missing column {c.name!r}")
        values = data[c.name]
        if not isinstance(values, list):
            raise InputError(f"{field_name}.{c.name} must be a list of values, got {describe(values)}")
        if rows is None:
            rows = len(values)
        elif len(values) != rows:
            raise InputError(f"{field_name}.{c.name} has {len(values)} values, other columns have {rows}")
        decoded[c.name] = coerce(c, values, lambda i, c=c: f"{field_name}.{c.name}[{i}]")
    if not rows:
        raise InputError(f'"{field_name}" has no rows')
    return decoded, rows


# ---------------------------------------------------------------- Open Inference Protocol v2


@dataclass
class V2Request:
    columns: Columns
    rows: int
    id: str | None = None
    parameters: dict = field(default_factory=dict)
    outputs: list[str] | None = None  # requested output names; all when None


def _flatten(data: Any, place: str) -> list:
    if not isinstance(data, list):
        raise InputError(f"{place}: \"data\" must be a list, got {describe(data)}")
    if not any(isinstance(v, list) for v in data):
        return data
    flat: list = []
    stack = [iter(data)]
    while stack:
        for value in stack[-1]:
            if isinstance(value, list):
                stack.append(iter(value))
                break
            flat.append(value)
        else:
            stack.pop()
    return flat


def _check_datatype_values(datatype: str, values: list, place: str) -> None:
    # null passes here for every datatype; the column's nullability decides later.
    if datatype == "BOOL":
        ok = lambda v: type(v) is bool or v is None  # noqa: E731
        wanted = "true or false"
    elif datatype in INT_DATATYPES:
        ok = lambda v: type(v) is int or v is None  # noqa: E731
        wanted = f"an integer ({datatype})"
    elif datatype in FLOAT_DATATYPES:
        ok = lambda v: _is_number(v) or v is None  # noqa: E731
        wanted = f"a number ({datatype})"
    else:
        ok = lambda v: type(v) is str or v is None  # noqa: E731
        wanted = "a string (BYTES)"
    for index, value in enumerate(values):
        if not ok(value):
            raise InputError(f"{place} data[{index}]: expected {wanted}, got {describe(value)}")


def _parse_input(raw: Any, index: int) -> tuple[str, list[int], str, list]:
    place = f"inputs[{index}]"
    if not isinstance(raw, dict):
        raise InputError(f"{place} must be an object with name, shape, datatype and data, got {describe(raw)}")
    for key in ("name", "shape", "datatype", "data"):
        if key not in raw:
            raise InputError(f"{place} has no {key!r}")
    name, shape, datatype = raw["name"], raw["shape"], raw["datatype"]
    if not isinstance(name, str) or not name:
        raise InputError(f"{place}: \"name\" must be a non-empty string")
    place = f"inputs[{index}] {name!r}"
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape) or not shape:
        raise InputError(f"{place}: \"shape\" must be a list of non-negative integers, got {shape!r}")
    if datatype not in V2_DATATYPES:
        raise InputError(f"{place}: unknown datatype {datatype!r} (one of {', '.join(V2_DATATYPES)})")
    if "parameters" in raw and not isinstance(raw["parameters"], dict):
        raise InputError(f"{place}: \"parameters\" must be an object")
    data = _flatten(raw["data"], place)
    needed = math.prod(shape)
    if len(data) != needed:
        raise InputError(f"{place}: shape {shape} needs {needed} values, \"data\" has {len(data)}")
    _check_datatype_values(datatype, data, place)
    return name, shape, datatype, data


_NUMPY_OF_DATATYPE = {"BOOL": "<u1", "INT8": "<i1", "INT16": "<i2", "INT32": "<i4", "INT64": "<i8", "UINT8": "<u1",
                      "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8", "FP16": "<f2", "FP32": "<f4", "FP64": "<f8"}


def split_binary_request(payload: bytes, header_length: int) -> tuple[bytes, bytes]:
    """The binary tensor data extension (Triton, tritonclient's default): the first
    `header_length` bytes are the JSON request, the rest the tensors' raw bytes."""
    if header_length < 0 or header_length > len(payload):
        raise InputError(f"Inference-Header-Content-Length is {header_length}, but the body has {len(payload)} bytes")
    return payload[:header_length], payload[header_length:]


def attach_binary_inputs(body: Any, binary: bytes) -> Any:
    """Turn inputs sent as raw bytes (parameters.binary_data_size, in input order) into
    `data` lists, so they decode like JSON tensors."""
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
        return body
    offset = 0
    for index, tensor in enumerate(body["inputs"]):
        if not isinstance(tensor, dict):
            continue
        parameters = tensor.get("parameters")
        size = parameters.get("binary_data_size") if isinstance(parameters, dict) else None
        if size is None:
            continue
        place = f"inputs[{index}] {tensor.get('name')!r}"
        if type(size) is not int or size < 0 or offset + size > len(binary):
            raise InputError(f"{place}: binary_data_size {size!r} does not fit the {len(binary) - offset} bytes left")
        if "data" in tensor:
            raise InputError(f"{place}: give either \"data\" or binary_data_size, not both")
        chunk = binary[offset:offset + size]
        offset += size
        datatype = tensor.get("datatype")
        if datatype == "BYTES":
            tensor["data"] = _bytes_elements(chunk, place)
        elif datatype in _NUMPY_OF_DATATYPE:
            dtype = np.dtype(_NUMPY_OF_DATATYPE[datatype])
            if size % dtype.itemsize:
                raise InputError(f"{place}: {size} bytes is not a whole number of {datatype} values")
            values = np.frombuffer(chunk, dtype=dtype)
            tensor["data"] = values.astype(bool).tolist() if datatype == "BOOL" else values.tolist()
        else:
            raise InputError(f"{place}: unknown datatype {datatype!r} (one of {', '.join(V2_DATATYPES)})")
    if offset != len(binary):
        raise InputError(f"{len(binary) - offset} bytes after the binary tensors belong to no input")
    return body


def _bytes_elements(chunk: bytes, place: str) -> list[str]:
    """BYTES elements: each a 4-byte little-endian length, then that many bytes (UTF-8 here)."""
    values, position = [], 0
    while position < len(chunk):
        if position + 4 > len(chunk):
            raise InputError(f"{place}: truncated BYTES element length at byte {position}")
        length = int.from_bytes(chunk[position:position + 4], "little")
        position += 4
        if position + length > len(chunk):
            raise InputError(f"{place}: BYTES element of {length} bytes runs past the tensor's data")
        try:
            values.append(chunk[position:position + length].decode("utf-8"))
        except UnicodeDecodeError:
            raise InputError(f"{place}: BYTES element {len(values)} is not UTF-8 text") from None
        position += length
    return values


def decode_v2(body: Any, columns: Sequence[ServeColumn], output_names: Sequence[str]) -> V2Request:
    """An inference request: one tensor per column (shape [n] or [n, 1]), or a single
    2-D tensor [n, columns] of numbers in column order."""
    if not isinstance(body, dict):
        raise InputError(f"the request body must be a JSON object with \"inputs\", got {describe(body)}")
    request_id = body.get("id")
    if request_id is not None and (not isinstance(request_id, str) or not request_id or len(request_id) > 256):
        raise InputError("\"id\" must be a non-empty string of at most 256 characters")
    parameters = body.get("parameters", {})
    if not isinstance(parameters, dict):
        raise InputError(f"\"parameters\" must be an object, got {describe(parameters)}")
    requested = _requested_outputs(body.get("outputs"), output_names)
    raw_inputs = body.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise InputError("\"inputs\" must be a non-empty list of tensors")
    parsed = [_parse_input(raw, i) for i, raw in enumerate(raw_inputs)]
    by_name = {c.name: c for c in columns}

    if len(parsed) == 1 and parsed[0][0] not in by_name and len(parsed[0][1]) == 2 and len(columns) > 1:
        decoded, rows = _decode_matrix(parsed[0], columns)
    else:
        decoded, rows = _decode_per_column(parsed, columns, by_name)
    if rows == 0:
        raise InputError("the inputs have no rows")
    return V2Request(columns=decoded, rows=rows, id=request_id, parameters=parameters, outputs=requested)


def _requested_outputs(raw: Any, output_names: Sequence[str]) -> list[str] | None:
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise InputError(f"\"outputs\" must be a list, got {describe(raw)}")
    names = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise InputError(f"outputs[{index}] must be an object with a \"name\"")
        if item["name"] not in output_names:
            raise InputError(f"outputs[{index}]: unknown output {item['name']!r} (available: {', '.join(output_names)})")
        names.append(item["name"])
    return names


def _decode_per_column(parsed, columns, by_name) -> tuple[Columns, int]:
    seen: dict[str, int] = {}
    rows = None
    decoded = Columns()
    for index, (name, shape, datatype, data) in enumerate(parsed):
        place = f"inputs[{index}] {name!r}"
        column = by_name.get(name)
        if column is None:
            raise InputError(f"{place}: unknown input; the model takes one tensor per column ({_expected(columns)}) "
                             f"or one 2-D tensor [rows, {len(columns)}]")
        if name in seen:
            raise InputError(f"{place}: column {name!r} is given twice (also inputs[{seen[name]}])")
        seen[name] = index
        if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)):
            raise InputError(f"{place}: shape must be [rows] or [rows, 1] for one column, got {shape}")
        if rows is None:
            rows = shape[0]
        elif shape[0] != rows:
            raise InputError(f"{place}: {shape[0]} rows, but {parsed[0][0]!r} has {rows}")
        if datatype not in ACCEPTED_DATATYPES[column.type]:
            raise InputError(f"{place}: datatype {datatype} does not fit column type {column.type} "
                             f"(send {' or '.join(ACCEPTED_DATATYPES[column.type][:3])})")
        decoded[name] = coerce(column, data, lambda i, place=place: f"{place} data[{i}]")
    missing = [c.name for c in columns if c.name not in decoded]
    if missing:
        raise InputError(f"missing input for column {missing[0]!r}" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    return decoded, rows or 0


def _decode_matrix(parsed, columns) -> tuple[Columns, int]:
    name, shape, datatype, data = parsed
    place = f"inputs[0] {name!r}"
    width = len(columns)
    if shape[1] != width:
        raise InputError(f"{place}: shape {shape} has {shape[1]} columns; the model takes {width} ({_expected(columns)})")
    not_numeric = [c.name for c in columns if c.type not in NUMERIC_TYPES]
    if not_numeric:
        raise InputError(f"{place}: a single 2-D tensor only carries numeric columns, but {not_numeric[0]!r} is "
                         f"{next(c.type for c in columns if c.name == not_numeric[0])}; send one tensor per column")
    if datatype not in FLOAT_DATATYPES + INT_DATATYPES:
        raise InputError(f"{place}: a 2-D tensor of numeric columns needs a numeric datatype, got {datatype}")
    rows = shape[0]
    if all(c.type == "float" for c in columns) and set(map(type, data)) <= {float, int}:
        matrix = np.array(data, dtype=np.float64).reshape(rows, width)
        if np.isfinite(matrix).all():
            return Columns.of_matrix(matrix, columns), rows
    decoded = Columns()
    for j, column in enumerate(columns):
        values = data[j::width]
        decoded[column.name] = coerce(column, values, lambda i, j=j, c=column: f"{place} data[{i * width + j}] (column {c.name!r})")
    return decoded, rows


# ---------------------------------------------------------------- batching helpers


def concat_columns(parts: Sequence[Columns], columns: Sequence[ServeColumn]) -> Columns:
    if len(parts) == 1:
        return parts[0]
    if all(getattr(p, "matrix", None) is not None for p in parts):
        return Columns.of_matrix(np.concatenate([p.matrix for p in parts]), columns)
    merged = Columns()
    for c in columns:
        arrays = [p[c.name] for p in parts]
        # int64 and float64 parts (a nullable int column) promote to float64; anything else mixed to object.
        if any(a.dtype != arrays[0].dtype for a in arrays) and not all(a.dtype.kind in "if" for a in arrays):
            arrays = [a.astype(object) for a in arrays]
        merged[c.name] = np.concatenate(arrays)
    return merged


def json_value(value: Any) -> Any:
    """A NumPy scalar as a plain JSON value (NaN/NaT -> None)."""
    if isinstance(value, np.generic):
        if isinstance(value, np.datetime64):
            return None if np.isnat(value) else str(np.datetime_as_string(value, unit="ms")) + "Z"
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def column_values(array: np.ndarray) -> list:
    """A column as plain JSON values."""
    if array.dtype.kind == "M":
        return [json_value(v) for v in array]
    if array.dtype.kind == "f":
        values = array.tolist()
        return [None if v != v else v for v in values]
    return [json_value(v) for v in array.tolist()] if array.dtype == object else array.tolist()
