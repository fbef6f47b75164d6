"""Field errors worded exactly as kube-apiserver words them in a `Status`'s causes.

kube-apiserver builds a cause from a `field.Error`: `reason` is the error type
(`FieldValueInvalid`...), `field` the path and `message` the error's "body":
`<type text>[: <bad value>][: <detail>]`, the bad value printed the way Go's fmt prints it.
"""

from __future__ import annotations

import decimal
import json
import math
from typing import Any

Cause = dict[str, str]

# The path of an error that names no field (Go prints a nil *field.Path as "<nil>").
NO_FIELD = "<nil>"

_TYPE_TEXT = {
    "FieldValueNotFound": "Not found",
    "FieldValueRequired": "Required value",
    "FieldValueDuplicate": "Duplicate value",
    "FieldValueInvalid": "Invalid value",
    "FieldValueTypeInvalid": "Invalid value",
    "FieldValueNotSupported": "Unsupported value",
    "FieldValueForbidden": "Forbidden",
    "FieldValueTooLong": "Too long",
    "FieldValueTooMany": "Too many",
    "InternalError": "Internal error",
}
# These error types never print their bad value.
_VALUE_OMITTED = {"FieldValueRequired", "FieldValueForbidden", "FieldValueTooLong", "InternalError"}
_OMIT = object()


def go_float(number: float) -> str:
    """A float64 as Go's `%v` prints it: shortest digits, `e+XX` form from exponent 6 on."""
    if math.isinf(number):
        return "+Inf" if number > 0 else "-Inf"
    if math.isnan(number):
        return "NaN"
    if number == 0:
        return "0"
    exp = decimal.Decimal(repr(abs(number))).adjusted()
    digits = repr(abs(number))
    if "e" in digits:
        digits = digits.split("e")[0]
    digits = digits.replace(".", "").lstrip("0").rstrip("0") or "0"
    sign = "-" if number < 0 else ""
    if exp < -4 or exp >= 6:
        body = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{body}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    text = repr(abs(number))
    if text.endswith(".0"):
        text = text[:-2]
    return sign + text


def go_quote(text: str) -> str:
    """A string as Go's `%q` prints it."""
    return json.dumps(text, ensure_ascii=False)


def go_value(value: Any) -> str:
    """A decoded JSON value as Go's `%v` prints it inside a field error: as `%#v` does, but for null."""
    if value is None:
        return '"null"'
    return go_sharp_v(value)


def go_sharp_v(value: Any) -> str:
    """A decoded JSON value as Go's `%#v` prints an `interface{}` holding it."""
    if value is None:
        return "interface {}(nil)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, dict):
        items = ", ".join(
            f"{go_quote(str(key))}:{go_sharp_v(value[key])}" for key in sorted(value)
        )
        return "map[string]interface {}{" + items + "}"
    if isinstance(value, list):
        return "[]interface {}{" + ", ".join(go_sharp_v(item) for item in value) + "}"
    return go_quote(str(value))


def make_cause(reason: str, field: str, value: Any = _OMIT, detail: str = "") -> Cause:
    text = _TYPE_TEXT[reason]
    if reason not in _VALUE_OMITTED and value is not _OMIT:
        text = f"{text}: {go_value(value)}"
    if detail:
        text = f"{text}: {detail}"
    return {"reason": reason, "message": text, "field": field or NO_FIELD}


def invalid(field: str, value: Any, detail: str = "") -> Cause:
    return make_cause("FieldValueInvalid", field, value, detail)


def type_invalid(field: str, value: Any, detail: str = "") -> Cause:
    return make_cause("FieldValueTypeInvalid", field, value, detail)


def required(field: str, detail: str = "") -> Cause:
    return make_cause("FieldValueRequired", field, detail=detail)


def forbidden(field: str, detail: str = "") -> Cause:
    return make_cause("FieldValueForbidden", field, detail=detail)


def duplicate(field: str, value: Any) -> Cause:
    return make_cause("FieldValueDuplicate", field, value)


def not_supported(field: str, value: Any, supported: list[Any]) -> Cause:
    quoted = [go_quote(item if isinstance(item, str) else json.dumps(item)) for item in supported]
    detail = "supported values: " + ", ".join(quoted) if quoted else ""
    return make_cause("FieldValueNotSupported", field, value, detail)


def too_long(field: str, max_length: int) -> Cause:
    unit = "byte" if max_length == 1 else "bytes"
    return make_cause("FieldValueTooLong", field, detail=f"may not be more than {max_length} {unit}")


def too_many(field: str, actual: int, maximum: int) -> Cause:
    unit = "item" if maximum == 1 else "items"
    return make_cause("FieldValueTooMany", field, actual, f"must have at most {maximum} {unit}")


def for_reason(reason: str | None, field: str, value: Any, detail: str) -> Cause:
    """The error a CEL rule with `reason` raises (as apiextensions' fieldErrorForReason)."""
    if reason == "FieldValueForbidden":
        return forbidden(field, detail)
    if reason == "FieldValueRequired":
        return required(field, detail)
    if reason == "FieldValueDuplicate":
        return duplicate(field, value)
    return invalid(field, value, detail)
