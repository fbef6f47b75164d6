"""CEL `x-kubernetes-validations` rules, evaluated with cel-python (`celpy`).

cel-python implements the CEL standard library and macros (`has`, `all`, `exists`,
`exists_one`, `map`, `filter`, `size`, `matches`, `startsWith`, `endsWith`, `contains`,
timestamps, durations). The Kubernetes extension libraries are added here: strings
(`lowerAscii`, `upperAscii`, `indexOf`, `lastIndexOf`, `split`, `join`, `replace`,
`substring`, `trim`, `charAt`), lists (`isSorted`, `sum`, `min`, `max`, `indexOf`,
`lastIndexOf`), URLs (`url`, `isURL`, `getScheme`, `getHost`, `getHostname`, `getPort`,
`getEscapedPath`, `getQuery`) and quantities (`quantity`, `isQuantity`, `compareTo`,
`isLessThan`, `isGreaterThan`, `asInteger`, `asApproximateFloat`, `sign`, `isInteger`,
`add`, `sub`).

Not supported (cel-python cannot parse or evaluate them): optional syntax (`self.?x`,
`optional.of`, `optionalOldSelf`), `ip`/`cidr`, `format`, the regex `find`/`findAll`
functions, `authorizer` and static type checking beyond undefined fields. A rule that
needs one of them is not treated as passing silently: it is reported as skipped (one
warning log line per rule) and counted in `SKIPPED_RULES`.
"""

from __future__ import annotations

import base64
import dataclasses
import decimal
import functools
import hashlib
import json
import logging
import re
from typing import Any, Callable
from urllib.parse import urlsplit

import celpy
from celpy import celtypes
from celpy.celparser import CELParseError
from celpy.evaluation import CELEvalError

from . import causes, values
from .causes import Cause
from .paths import Path
from .values import same, schema_types

log = logging.getLogger("kadence.sandbox.schema.cel")

Schema = dict[str, Any]

# Rules that could not be evaluated with cel-python, each logged once.
SKIPPED_RULES: set[str] = set()

_UNSUPPORTED_SYNTAX = re.compile(r"\.\?|\[\?|\boptional\.|\.orValue\(|\.hasValue\(")
_OLD_SELF = re.compile(r"\boldSelf\b")
_MAX_MESSAGE_EXPRESSION_BYTES = 5 * 1024
_INT64_MIN, _INT64_MAX = -(2 ** 63), 2 ** 63 - 1
_QUOTED_KEY = re.compile(r"\['((?:[^'\\]|\\.)*)'\]")
_CEL_RESERVED = {
    "true", "false", "null", "in", "as", "break", "const", "continue", "else", "for",
    "function", "if", "import", "let", "loop", "package", "namespace", "return", "var",
    "void", "while",
}


class UnsupportedRule(Exception):
    """The rule uses CEL that cel-python cannot evaluate."""


# ---- the Kubernetes CEL libraries -------------------------------------------------------

def _string_index_of(text: Any, sub: Any, start: Any = None) -> Any:
    if isinstance(text, celtypes.ListType):
        for position, item in enumerate(text):
            if item == sub:
                return celtypes.IntType(position)
        return celtypes.IntType(-1)
    offset = int(start) if start is not None else 0
    if offset < 0 or offset > len(text):
        raise ValueError(f"index out of range: {offset}")
    return celtypes.IntType(str(text).find(str(sub), offset))


def _last_index_of(text: Any, sub: Any, end: Any = None) -> Any:
    if isinstance(text, celtypes.ListType):
        for position in range(len(text) - 1, -1, -1):
            if text[position] == sub:
                return celtypes.IntType(position)
        return celtypes.IntType(-1)
    if end is None:
        return celtypes.IntType(str(text).rfind(str(sub)))
    return celtypes.IntType(str(text).rfind(str(sub), 0, int(end) + len(sub)))


def _split(text: Any, separator: Any, limit: Any = None) -> Any:
    count = -1 if limit is None else int(limit)
    if count == 0:
        return celtypes.ListType([])
    parts = str(text).split(str(separator), count - 1 if count > 0 else -1) if separator else list(text)
    return celtypes.ListType([celtypes.StringType(part) for part in parts])


def _join(items: Any, separator: Any = None) -> Any:
    return celtypes.StringType(("" if separator is None else str(separator)).join(
        str(item) for item in items))


def _replace(text: Any, old: Any, new: Any, limit: Any = None) -> Any:
    count = -1 if limit is None else int(limit)
    return celtypes.StringType(str(text).replace(str(old), str(new), count))


def _substring(text: Any, start: Any, end: Any = None) -> Any:
    stop = len(text) if end is None else int(end)
    if not 0 <= int(start) <= stop <= len(text):
        raise ValueError(f"index out of range: {int(start)}")
    return celtypes.StringType(str(text)[int(start):stop])


def _char_at(text: Any, position: Any) -> Any:
    index = int(position)
    if not 0 <= index <= len(text):
        raise ValueError(f"index out of range: {index}")
    return celtypes.StringType(str(text)[index:index + 1])


def _is_sorted(items: Any) -> Any:
    return celtypes.BoolType(all(items[i] <= items[i + 1] for i in range(len(items) - 1)))


def _sum(items: Any) -> Any:
    total = items[0] if items else celtypes.IntType(0)
    for item in list(items)[1:]:
        total = total + item
    return total


def _min(items: Any) -> Any:
    if not items:
        raise ValueError("min called on empty list")
    return min(items)


def _max(items: Any) -> Any:
    if not items:
        raise ValueError("max called on empty list")
    return max(items)


@dataclasses.dataclass(frozen=True)
class _URL:
    parts: Any


def _url(text: Any) -> Any:
    parsed = urlsplit(str(text))
    if not parsed.scheme and not str(text).startswith("/"):
        raise ValueError(f"URL is not absolute: {text}")
    return _URL(parsed)


def _is_url(text: Any) -> Any:
    try:
        _url(text)
    except ValueError:
        return celtypes.BoolType(False)
    return celtypes.BoolType(True)


_QUANTITY = re.compile(r"^([+-]?(\d+(\.\d*)?|\.\d+))(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\d+)?$")
_SUFFIX = {
    None: decimal.Decimal(1), "n": decimal.Decimal("1e-9"), "u": decimal.Decimal("1e-6"),
    "m": decimal.Decimal("1e-3"), "k": decimal.Decimal("1e3"), "M": decimal.Decimal("1e6"),
    "G": decimal.Decimal("1e9"), "T": decimal.Decimal("1e12"), "P": decimal.Decimal("1e15"),
    "E": decimal.Decimal("1e18"), "Ki": decimal.Decimal(2 ** 10), "Mi": decimal.Decimal(2 ** 20),
    "Gi": decimal.Decimal(2 ** 30), "Ti": decimal.Decimal(2 ** 40), "Pi": decimal.Decimal(2 ** 50),
    "Ei": decimal.Decimal(2 ** 60),
}


@dataclasses.dataclass(frozen=True)
class _Quantity:
    value: decimal.Decimal


def parse_quantity(text: str) -> decimal.Decimal:
    match = _QUANTITY.match(text)
    if not match:
        raise ValueError(f"quantities must match the regular expression '{_QUANTITY.pattern}'")
    number = decimal.Decimal(match[1])
    suffix = match[4]
    if suffix and suffix[0] in "eE":
        return number * (decimal.Decimal(10) ** int(suffix[1:]))
    return number * _SUFFIX[suffix]


def _quantity(text: Any) -> Any:
    return _Quantity(parse_quantity(str(text)))


def _is_quantity(text: Any) -> Any:
    try:
        parse_quantity(str(text))
    except ValueError:
        return celtypes.BoolType(False)
    return celtypes.BoolType(True)


def _compare(left: Any, right: Any) -> int:
    return (left.value > right.value) - (left.value < right.value)


def _add(left: Any, right: Any) -> Any:
    other = right.value if isinstance(right, _Quantity) else decimal.Decimal(int(right))
    return _Quantity(left.value + other)


def _sub(left: Any, right: Any) -> Any:
    other = right.value if isinstance(right, _Quantity) else decimal.Decimal(int(right))
    return _Quantity(left.value - other)


def _url_part(name: str) -> Callable[[Any], Any]:
    def getter(url: Any) -> Any:
        parts = url.parts
        value = {
            "getScheme": parts.scheme,
            "getHost": parts.netloc.rsplit("@", 1)[-1],
            "getHostname": parts.hostname or "",
            "getPort": str(parts.port) if parts.port else "",
            "getEscapedPath": parts.path,
            "getQuery": None,
        }[name]
        if name == "getQuery":
            from urllib.parse import parse_qs
            return celtypes.MapType({
                celtypes.StringType(key): celtypes.ListType([celtypes.StringType(v) for v in vals])
                for key, vals in parse_qs(parts.query).items()
            })
        return celtypes.StringType(value)
    return getter


KUBERNETES_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "lowerAscii": lambda text: celtypes.StringType(str(text).lower()),
    "upperAscii": lambda text: celtypes.StringType(str(text).upper()),
    "trim": lambda text: celtypes.StringType(str(text).strip()),
    "indexOf": _string_index_of,
    "lastIndexOf": _last_index_of,
    "split": _split,
    "join": _join,
    "replace": _replace,
    "substring": _substring,
    "charAt": _char_at,
    "isSorted": _is_sorted,
    "sum": _sum,
    "min": _min,
    "max": _max,
    "url": _url,
    "isURL": _is_url,
    **{name: _url_part(name) for name in
       ("getScheme", "getHost", "getHostname", "getPort", "getEscapedPath", "getQuery")},
    "quantity": _quantity,
    "isQuantity": _is_quantity,
    "compareTo": lambda left, right: celtypes.IntType(_compare(left, right)),
    "isLessThan": lambda left, right: celtypes.BoolType(_compare(left, right) < 0),
    "isGreaterThan": lambda left, right: celtypes.BoolType(_compare(left, right) > 0),
    "asInteger": lambda quantity: celtypes.IntType(int(quantity.value)),
    "asApproximateFloat": lambda quantity: celtypes.DoubleType(float(quantity.value)),
    "isInteger": lambda quantity: celtypes.BoolType(quantity.value == quantity.value.to_integral()),
    "sign": lambda quantity: celtypes.IntType((quantity.value > 0) - (quantity.value < 0)),
    "add": _add,
    "sub": _sub,
}

_ENVIRONMENT = celpy.Environment()


# ---- compiling --------------------------------------------------------------------------

@functools.lru_cache(maxsize=4096)
def _compile_expression(expression: str) -> Any:
    """A celpy program, or raises CELParseError / UnsupportedRule."""
    if _UNSUPPORTED_SYNTAX.search(expression):
        raise UnsupportedRule("optional types are not supported by cel-python")
    ast = _ENVIRONMENT.compile(expression)
    return _ENVIRONMENT.program(ast, functions=KUBERNETES_FUNCTIONS)


def cel_go_issue(expression: str, line: int, column: int, message: str) -> str:
    """An issue as cel-go prints it: position, message, the source line and a caret."""
    lines = expression.split("\n")
    source = lines[line - 1] if 0 < line <= len(lines) else expression
    return (f"ERROR: <input>:{line}:{column}: {message}\n | {source}\n | "
            f"{'.' * max(column - 1, 0)}^")


def parse_error_text(expression: str, error: CELParseError) -> str:
    """A cel-python parse error in cel-go's layout (the wording after "Syntax error" is an
    approximation: cel-python does not say what it expected)."""
    line = getattr(error, "line", None) or 1
    column = getattr(error, "column", None) or 1
    source = expression.split("\n")[line - 1] if expression else ""
    token = re.match(r"[A-Za-z_][A-Za-z0-9_]*|\S", source[column - 1:]) if source else None
    shown = token[0] if token else "<EOF>"
    return cel_go_issue(expression, line, column, f"Syntax error: mismatched input '{shown}'")


def compile_errors(rule: dict[str, Any], schema: Schema,
                   resource_root: bool = False) -> list[tuple[str, str]]:
    """(key, detail) for what keeps a rule from compiling, worded as the apiserver's CEL
    compiler reports it: syntax errors and selections of fields the schema cannot have."""
    problems = []
    for key, prefix in (("rule", "compilation failed: "),
                        ("messageExpression", "messageExpression compilation failed: ")):
        expression = rule.get(key)
        if not expression:
            continue
        try:
            _compile_expression(expression)
        except CELParseError as error:
            problems.append((key, prefix + parse_error_text(expression, error)))
            continue
        except UnsupportedRule:
            continue
        for name, offset in undefined_fields(expression, schema, resource_root):
            line = expression.count("\n", 0, offset) + 1
            column = offset - (expression.rfind("\n", 0, offset) + 1) + 1
            problems.append((key, prefix + cel_go_issue(
                expression, line, column, f"undefined field '{name}'")))
    if rule.get("optionalOldSelf") and not _OLD_SELF.search(rule.get("rule", "")):
        problems.append(("optionalOldSelf", "may not be set if oldSelf is not used in rule"))
    return problems


_STRING_LITERAL = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_SELF_CHAIN = re.compile(r"\b(?:self|oldSelf)((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")


# What a rule at a resource root sees besides the schema: only metadata.name/generateName.
_RESOURCE_FIELDS = {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                    "metadata": {"type": "object", "properties": {
                        "name": {"type": "string"}, "generateName": {"type": "string"}}}}


def undefined_fields(expression: str, schema: Schema,
                     resource_root: bool = False) -> list[tuple[str, int]]:
    """Field selections on `self`/`oldSelf` that the schema cannot have (the apiserver's type
    checker rejects them at CRD creation). A resource root (or embedded resource) always has
    apiVersion, kind and metadata."""
    # String literals blanked out, same length, so offsets still point into `expression`.
    without_strings = _STRING_LITERAL.sub(
        lambda literal: literal[0][0] + " " * (len(literal[0]) - 2) + literal[0][-1], expression)
    missing = []
    for match in _SELF_CHAIN.finditer(without_strings):
        node: Schema | None = schema
        for step, name in enumerate(match[1].split(".")[1:]):
            if node is None or _is_function_call(without_strings, match, name):
                break
            properties = dict(node.get("properties") or {})
            if step == 0 and (resource_root or node.get("x-kubernetes-embedded-resource")):
                properties = {**properties, **_RESOURCE_FIELDS}
            additional = node.get("additionalProperties")
            if isinstance(additional, dict):
                node = additional  # a map: any key may be selected
            elif unescape_property_name(name) in properties:
                node = properties[unescape_property_name(name)]
            elif node.get("x-kubernetes-preserve-unknown-fields") or "object" not in schema_types(node):
                break  # untyped (dyn) or not an object: the type checker cannot tell
            else:
                missing.append((name, _dot_offset(match, step)))
                break
    return missing


def _dot_offset(match: re.Match[str], step: int) -> int:
    """Where the `.` before the step-th selected name is in the expression."""
    offset = match.start(1)
    for _ in range(step):
        offset = match.string.index(".", offset + 1)
    return offset


def _is_function_call(text: str, match: re.Match[str], name: str) -> bool:
    end = match.start(1) + match[1].index("." + name) + len(name) + 1
    return text[end:end + 1] == "("


def escape_property_name(name: str) -> str:
    """Property names as CEL sees them (`x-y` is `x__dash__y`, `in` is `__in__`)."""
    if name in _CEL_RESERVED:
        return f"__{name}__"
    return (name.replace("__", "__underscores__").replace(".", "__dot__")
            .replace("-", "__dash__").replace("/", "__slash__"))


def unescape_property_name(name: str) -> str:
    if name.startswith("__") and name.endswith("__") and name[2:-2] in _CEL_RESERVED:
        return name[2:-2]
    return (name.replace("__dot__", ".").replace("__dash__", "-").replace("__slash__", "/")
            .replace("__underscores__", "__"))


# ---- values ----------------------------------------------------------------------------

class UnorderedList(celtypes.ListType):
    """A `x-kubernetes-list-type: set` or `map` list: Kubernetes CEL compares such lists
    ignoring the order of their elements ([1, 2] == [2, 1])."""

    def __eq__(self, other: Any) -> bool:
        if other is None:
            return False
        if not isinstance(other, list):
            raise TypeError(f"no such overload: ListType == {type(other)}")
        if len(self) != len(other):
            return False
        unmatched = list(other)
        for item in self:
            for position, candidate in enumerate(unmatched):
                try:
                    equal = bool(item == candidate)
                except TypeError:
                    equal = False
                if equal:
                    del unmatched[position]
                    break
            else:
                return False
        return True

    def __ne__(self, other: Any) -> bool:
        return not self.__eq__(other)

    __hash__ = None  # type: ignore[assignment]


def to_cel(value: Any, schema: Schema | None) -> Any:
    """A JSON value as the typed CEL value the apiserver builds from the schema."""
    schema = schema or {}
    if value is None:
        return None
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        converted = {}
        for key, item in value.items():
            if key in properties:
                converted[celtypes.StringType(escape_property_name(key))] = to_cel(item, properties[key])
            else:
                sub = additional if isinstance(additional, dict) else None
                converted[celtypes.StringType(key)] = to_cel(item, sub)
        return celtypes.MapType(converted)
    if isinstance(value, list):
        items = schema.get("items") if isinstance(schema.get("items"), dict) else None
        converted = [to_cel(item, items) for item in value]
        if schema.get("x-kubernetes-list-type") in ("set", "map"):
            return UnorderedList(converted)
        return celtypes.ListType(converted)
    if isinstance(value, bool):
        return celtypes.BoolType(value)
    types = schema_types(schema)
    if isinstance(value, (int, float)):
        # Go decodes JSON integers within int64 as int64, everything else as float64.
        as_int = (isinstance(value, int) or ("integer" in types and float(value).is_integer()))
        if as_int and "number" not in types and _INT64_MIN <= int(value) <= _INT64_MAX:
            return celtypes.IntType(int(value))
        return celtypes.DoubleType(value)
    if isinstance(value, str):
        format_name = schema.get("format")
        try:
            if format_name in ("date-time", "datetime"):
                return celtypes.TimestampType(value)
            if format_name == "duration":
                return celtypes.DurationType(value)
            if format_name == "byte":
                return celtypes.BytesType(base64.b64decode(value))
        except (ValueError, TypeError):
            pass
        return celtypes.StringType(value)
    return value


# ---- evaluating ------------------------------------------------------------------------

def _eval_error_text(error: BaseException) -> str:
    """celpy's error as a short text in the words of cel-go where they differ."""
    if isinstance(error, CELEvalError) and error.args:
        text = str(error.args[0])
        member = re.match(r"no such member in mapping: '(.*)'", text)
        if member:
            return f"no such key: {member[1]}"
        if text == "invalid_argument" and len(error.args) > 2 and error.args[2]:
            detail = str(error.args[2][0]) if error.args[2] else text
            if "index out of range" in detail:
                return "index out of bounds"
            return detail
        if text.startswith("found no matching overload") or text == "no such overload":
            return "no such overload"
        if text == "modulus or divide by zero":
            return "division by zero"
        if text == "return error for overflow":  # celpy's wording for any ValueError
            inner = error.args[2] if len(error.args) > 2 else ()
            text = str(inner[0]) if inner else "overflow"
        if text == "overflow":
            return "integer overflow"
        return text
    if isinstance(error, (TypeError, AttributeError)):
        return "no such overload"  # a library function given the wrong kind of value
    if isinstance(error, ZeroDivisionError):
        return "division by zero"
    return str(error)


def _is_unsupported(error: BaseException) -> bool:
    text = str(error.args[0]) if error.args else ""
    return text.startswith("undeclared reference to")


def _skip(rule_text: str, why: str) -> None:
    if rule_text not in SKIPPED_RULES:
        SKIPPED_RULES.add(rule_text)
        log.warning("CEL rule not evaluated (%s), treated as skipped: %s", why, rule_text)


def _run(program: Any, activation: dict[str, Any]) -> Any:
    result = program.evaluate(activation)
    if isinstance(result, CELEvalError):
        raise result
    return result


def evaluate_rules(value: Any, schema: Schema, path: Path, old: Any = None,
                   has_old: bool = False) -> list[Cause]:
    """The errors of the `x-kubernetes-validations` rules on `value` and everything below it.

    `old` is the correlated previous value (updates only); rules that use `oldSelf` run only
    when there is one.
    """
    found: list[Cause] = []
    if value is None:
        return found
    rules = schema.get("x-kubernetes-validations") or []
    if rules:
        fingerprint = _fingerprint(schema)
        value_key = json.dumps(value, sort_keys=True)
        old_key = json.dumps(old, sort_keys=True) if has_old else ""
        unchanged = has_old and same(value, old)
        for index, rule in enumerate(rules):
            if unchanged and not _OLD_SELF.search(rule.get("rule", "")):
                continue  # ratcheting: an unchanged value is not checked again
            verdict = _verdict(fingerprint, index, value_key, old_key, has_old)
            if verdict is not None:
                found.append(_cause(verdict, rule, schema, path))
    found.extend(_evaluate_children(value, schema, path, old, has_old))
    return found


# Schema nodes by a fingerprint of their content, so that verdicts can be memoized across
# objects (CEL rules are pure functions of self and oldSelf, and cel-python is slow).
_SCHEMAS: dict[str, Schema] = {}
_FINGERPRINTS: dict[int, tuple[Schema, str]] = {}
_MAX_REMEMBERED_SCHEMAS = 2048


def _fingerprint(schema: Schema) -> str:
    remembered = _FINGERPRINTS.get(id(schema))
    if remembered is not None and remembered[0] is schema:
        return remembered[1]
    if len(_FINGERPRINTS) >= _MAX_REMEMBERED_SCHEMAS:
        _FINGERPRINTS.clear()
    fingerprint = hashlib.sha256(json.dumps(schema, sort_keys=True).encode()).hexdigest()
    # Holding the schema keeps its id from being reused while it is remembered.
    _FINGERPRINTS[id(schema)] = (schema, fingerprint)
    if fingerprint not in _SCHEMAS and len(_SCHEMAS) >= _MAX_REMEMBERED_SCHEMAS:
        _SCHEMAS.clear()
        _verdict.cache_clear()
    _SCHEMAS.setdefault(fingerprint, schema)
    return fingerprint


Verdict = tuple[str, str]  # ("error", detail at the node) or ("failed", message)


@functools.lru_cache(maxsize=8192)
def _verdict(fingerprint: str, index: int, value_key: str, old_key: str,
             has_old: bool) -> Verdict | None:
    schema = _SCHEMAS[fingerprint]
    rule = schema["x-kubernetes-validations"][index]
    rule_text = rule.get("rule", "")
    uses_old = bool(_OLD_SELF.search(rule_text))
    if uses_old and rule.get("optionalOldSelf"):
        _skip(rule_text, "optionalOldSelf needs CEL optionals")
        return None
    if uses_old and not has_old:
        return None
    try:
        program = _compile_expression(rule_text)
    except UnsupportedRule as error:
        _skip(rule_text, str(error))
        return None
    except CELParseError as error:
        return ("error", f"rule compile error: compilation failed: "
                         f"{parse_error_text(rule_text, error)}")
    except Exception as error:  # noqa: BLE001 - cel-python failing on odd input
        return ("error", f"rule compile error: {error}")
    activation = {"self": to_cel(json.loads(value_key), schema)}
    if uses_old:
        activation["oldSelf"] = to_cel(json.loads(old_key), schema)
    try:
        result = _run(program, activation)
    except Exception as error:  # noqa: BLE001 - any failure of the rule is the rule's error
        if _is_unsupported(error):
            _skip(rule_text, _eval_error_text(error))
            return None
        text = _eval_error_text(error)
        if text == "no such overload":
            return ("error", f"'{text}': call arguments did not match a supported operator, "
                             f"function or macro signature for rule: {_rule_error_string(rule)}")
        return ("error", f"{text} evaluating rule: {_rule_error_string(rule)}")
    if result is True or (isinstance(result, celtypes.BoolType) and bool(result)):
        return None
    return ("failed", _message(rule, activation))


def _cause(verdict: Verdict, rule: dict[str, Any], schema: Schema, path: Path) -> Cause:
    kind, text = verdict
    node_type = _type_name(schema)
    if kind == "error":
        return causes.invalid(path.field, node_type, text)
    field = path.field
    # `.spec['a.b']` is normalized as field.Path prints it: `spec[a.b]`.
    relative = _QUOTED_KEY.sub(r"[\1]", (rule.get("fieldPath") or "")).lstrip(".")
    if relative:
        field = f"{field}.{relative}" if field else relative
    return causes.for_reason(rule.get("reason"), field, node_type, text)


def _message(rule: dict[str, Any], activation: dict[str, Any]) -> str:
    expression = rule.get("messageExpression")
    if expression:
        try:
            text = _run(_compile_expression(expression), activation)
        except Exception:  # noqa: BLE001 - a failing messageExpression falls back to message
            text = None
        trimmed = str(text).strip() if isinstance(text, str) else ""
        if trimmed and "\n" not in trimmed and len(trimmed) <= _MAX_MESSAGE_EXPRESSION_BYTES:
            return trimmed
    return _rule_message_or_default(rule)


def _rule_error_string(rule: dict[str, Any]) -> str:
    return (rule.get("message") or rule.get("rule", "")).strip()


def _rule_message_or_default(rule: dict[str, Any]) -> str:
    if rule.get("message"):
        return rule["message"].strip()
    return f"failed rule: {_rule_error_string(rule)}"


def _type_name(schema: Schema) -> str:
    types = schema_types(schema)
    if schema.get("x-kubernetes-int-or-string"):
        return ""
    return types[0] if types else ""


def _evaluate_children(value: Any, schema: Schema, path: Path, old: Any,
                       has_old: bool) -> list[Cause]:
    found: list[Cause] = []
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        old_map = old if has_old and isinstance(old, dict) else None
        for key, item in value.items():
            if key in properties:
                sub_schema, sub_path = properties[key], path.child(key)
            elif isinstance(additional, dict):
                sub_schema, sub_path = additional, path.key(key)
            else:
                continue
            found.extend(evaluate_rules(
                item, sub_schema, sub_path,
                old_map.get(key) if old_map is not None else None,
                old_map is not None and key in old_map))
    elif isinstance(value, list):
        items = schema.get("items")
        if not isinstance(items, dict):
            return found
        old_items = values.old_items_by_key(schema, old if has_old else values.ABSENT)
        for position, item in enumerate(value):
            old_item = values.correlated_item(schema, item, old_items)
            found.extend(evaluate_rules(item, items, path.index(position),
                                        None if old_item is values.ABSENT else old_item,
                                        old_item is not values.ABSENT))
    return found


def has_rules(schema: Any) -> bool:
    """Whether any node of the schema carries `x-kubernetes-validations`."""
    if isinstance(schema, dict):
        if schema.get("x-kubernetes-validations"):
            return True
        return any(has_rules(item) for item in schema.values())
    if isinstance(schema, list):
        return any(has_rules(item) for item in schema)
    return False

