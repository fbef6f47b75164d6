"""The safe expression language of FeatureSet features, e.g. `log1p(tenure)` or
`where(age > 65, 1, 0) + clip(income / 1000, 0, 500)`.

User text is parsed with `ast.parse(mode="eval")` and every node is checked against a
whitelist; the checked tree is then interpreted node by node over pandas columns
(vectorized). Nothing is ever handed to `eval`/`exec`/`compile`.

Allowed:
- numbers, strings, True/False; column names;
- arithmetic `+ - * / // %`, `**` with a literal exponent of at most 16 in magnitude,
  unary `-`/`+`, `not`, `and`, `or`, comparisons (chains too);
- calls of the functions in FUNCTIONS (positional arguments only).

Arithmetic is done in float64, so integer columns can never overflow or blow up.
Everything else (attribute access, subscripts, lambdas, comprehensions, f-strings,
dunder names, calls of anything not whitelisted, very long or deeply nested text)
is refused with an ExpressionError that names the problem.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd

MAX_LENGTH = 4096
MAX_DEPTH = 32
MAX_NODES = 512
MAX_EXPONENT = 16
MAX_INTEGER_LITERAL = 2**53


class ExpressionError(ValueError):
    """The expression is not allowed, does not parse, or cannot be evaluated."""


@dataclass(frozen=True)
class Function:
    min_args: int
    max_args: int
    apply: Callable[..., Any]
    doc: str


def _numeric(value: Any, what: str) -> Any:
    if isinstance(value, pd.Series):
        if pd.api.types.is_bool_dtype(value.dtype) or pd.api.types.is_numeric_dtype(value.dtype):
            return pd.Series(value.to_numpy(dtype="float64", na_value=np.nan), index=value.index, name=value.name)
        raise ExpressionError(f"{what} needs numbers, got a {value.dtype} column")
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    raise ExpressionError(f"{what} needs numbers, got {value!r}")


def _datetime(value: Any, what: str) -> pd.Series:
    if isinstance(value, pd.Series):
        if pd.api.types.is_datetime64_any_dtype(value.dtype):
            return value
        if pd.api.types.is_string_dtype(value.dtype) or value.dtype == object:
            try:
                return pd.to_datetime(value, utc=True, format="ISO8601")
            except (ValueError, TypeError) as error:
                raise ExpressionError(f"{what} needs datetimes: {error}") from None
    raise ExpressionError(f"{what} needs a datetime column")


def _date_part(name: str, attribute: str) -> Callable[[Any], Any]:
    def apply(value: Any) -> Any:
        series = _datetime(value, f"{name}()")
        return getattr(series.dt, attribute).astype("float64")

    return apply


def _round(value: Any, digits: Any = 0) -> Any:
    if not isinstance(digits, float) or not digits.is_integer() or not 0 <= digits <= 15:
        raise ExpressionError("round() takes a literal number of digits between 0 and 15")
    return np.round(_numeric(value, "round()"), int(digits))


def _where(condition: Any, if_true: Any, if_false: Any) -> Any:
    if isinstance(condition, pd.Series):
        mask = condition.fillna(False).astype(bool).to_numpy()
        index = condition.index
    elif isinstance(condition, (bool, float)):
        return if_true if condition else if_false
    else:
        raise ExpressionError("where() needs a condition as its first argument")
    a = if_true.to_numpy() if isinstance(if_true, pd.Series) else if_true
    b = if_false.to_numpy() if isinstance(if_false, pd.Series) else if_false
    return pd.Series(np.where(mask, a, b), index=index)


def _isnull(value: Any) -> Any:
    if isinstance(value, pd.Series):
        return value.isna()
    return value is None or (isinstance(value, float) and np.isnan(value))


def _fillna(value: Any, fill: Any) -> Any:
    if isinstance(value, pd.Series):
        if isinstance(fill, pd.Series):
            return value.fillna(fill)
        return value.fillna(fill)
    return fill if _isnull(value) else value


def _unary(name: str, ufunc: Callable[[Any], Any]) -> Function:
    def apply(value: Any) -> Any:
        with np.errstate(all="ignore"):
            return ufunc(_numeric(value, f"{name}()"))

    return Function(1, 1, apply, f"{name}(x)")


def _clip(value: Any, low: Any, high: Any) -> Any:
    return np.clip(_numeric(value, "clip()"), _numeric(low, "clip()"), _numeric(high, "clip()"))


def _pairwise(name: str, ufunc: Callable[[Any, Any], Any]) -> Function:
    def apply(a: Any, b: Any) -> Any:
        return ufunc(_numeric(a, f"{name}()"), _numeric(b, f"{name}()"))

    return Function(2, 2, apply, f"{name}(a, b)")


FUNCTIONS: dict[str, Function] = {
    "log": _unary("log", np.log),
    "log1p": _unary("log1p", np.log1p),
    "exp": _unary("exp", np.exp),
    "sqrt": _unary("sqrt", np.sqrt),
    "abs": _unary("abs", np.abs),
    "floor": _unary("floor", np.floor),
    "ceil": _unary("ceil", np.ceil),
    "round": Function(1, 2, _round, "round(x[, digits])"),
    "clip": Function(3, 3, _clip, "clip(x, low, high)"),
    "where": Function(3, 3, _where, "where(condition, a, b)"),
    "min": _pairwise("min", np.minimum),
    "max": _pairwise("max", np.maximum),
    "isnull": Function(1, 1, _isnull, "isnull(x)"),
    "fillna": Function(2, 2, _fillna, "fillna(x, value)"),
    "year": Function(1, 1, _date_part("year", "year"), "year(t)"),
    "month": Function(1, 1, _date_part("month", "month"), "month(t)"),
    "day": Function(1, 1, _date_part("day", "day"), "day(t)"),
    "dayofweek": Function(1, 1, _date_part("dayofweek", "day_of_week"), "dayofweek(t) (Monday=0)"),
    "hour": Function(1, 1, _date_part("hour", "hour"), "hour(t)"),
}

_BINARY = {
    ast.Add: ("+", lambda a, b: a + b),
    ast.Sub: ("-", lambda a, b: a - b),
    ast.Mult: ("*", lambda a, b: a * b),
    ast.Div: ("/", lambda a, b: a / b),
    ast.FloorDiv: ("//", lambda a, b: a // b),
    ast.Mod: ("%", lambda a, b: a % b),
    ast.Pow: ("**", lambda a, b: a**b),
}
_COMPARE = {
    ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b,
    ast.Gt: lambda a, b: a > b,
    ast.GtE: lambda a, b: a >= b,
    ast.Eq: lambda a, b: a == b,
    ast.NotEq: lambda a, b: a != b,
}
_REFUSED = {
    ast.Attribute: "attribute access (`.name`)",
    ast.Subscript: "subscripts (`[...]`)",
    ast.Lambda: "lambdas",
    ast.ListComp: "comprehensions",
    ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions",
    ast.GeneratorExp: "generator expressions",
    ast.JoinedStr: "f-strings",
    ast.NamedExpr: "assignments (`:=`)",
    ast.Starred: "starred arguments",
    ast.List: "lists",
    ast.Tuple: "tuples",
    ast.Dict: "dicts",
    ast.Set: "sets",
    ast.IfExp: "`a if c else b` (use where(c, a, b))",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
    ast.Slice: "slices",
}


@dataclass(frozen=True)
class CompiledExpression:
    """A checked expression: its text, its tree and the columns it reads."""

    text: str
    tree: ast.Expression = field(repr=False, compare=False)
    columns: tuple[str, ...]

    def evaluate(self, frame: pd.DataFrame) -> pd.Series:
        """Evaluate over the rows of `frame`; always returns a Series aligned with it."""
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise ExpressionError(f"unknown column {missing[0]!r} in {self.text!r}")
        with np.errstate(all="ignore"):
            value = _Evaluator(frame).visit(self.tree.body)
        if isinstance(value, pd.Series):
            return value
        return pd.Series(np.full(len(frame), value), index=frame.index)


def compile_expression(text: str, columns: Mapping[str, Any] | set[str] | list[str] | None = None) -> CompiledExpression:
    """Parse and check `text`. When `columns` is given, every name must be one of them."""
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError("the expression is empty")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"the expression is {len(text)} characters long; at most {MAX_LENGTH} are allowed")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as error:
        raise ExpressionError(f"not a valid expression: {error.msg} (column {error.offset})") from None
    except (RecursionError, MemoryError, ValueError) as error:
        raise ExpressionError(f"not a valid expression: {type(error).__name__}") from None
    names = _Checker().check(tree)
    if columns is not None:
        known = set(columns)
        for name in names:
            if name not in known:
                raise ExpressionError(f"unknown column {name!r} (known columns: {', '.join(sorted(known))})")
    return CompiledExpression(text=text, tree=tree, columns=tuple(names))


class _Checker:
    """Walks the tree once; refuses anything outside the whitelist, collects column names."""

    def check(self, tree: ast.Expression) -> list[str]:
        self.names: list[str] = []
        self.nodes = 0
        self._visit(tree.body, 1)
        return self.names

    def _visit(self, node: ast.AST, depth: int) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise ExpressionError(f"the expression has more than {MAX_NODES} parts")
        if depth > MAX_DEPTH:
            raise ExpressionError(f"the expression is nested deeper than {MAX_DEPTH} levels")
        for refused, what in _REFUSED.items():
            if isinstance(node, refused):
                raise ExpressionError(f"not allowed in an expression: {what}")
        if isinstance(node, ast.Constant):
            self._constant(node)
        elif isinstance(node, ast.Name):
            self._name(node.id)
            if node.id in FUNCTIONS:
                raise ExpressionError(f"{node.id} is a function; call it as {FUNCTIONS[node.id].doc}")
            if node.id not in self.names:
                self.names.append(node.id)
        elif isinstance(node, ast.BinOp):
            if type(node.op) not in _BINARY:
                raise ExpressionError(f"the operator {type(node.op).__name__} is not allowed")
            if isinstance(node.op, ast.Pow):
                self._exponent(node.right)
            self._visit(node.left, depth + 1)
            self._visit(node.right, depth + 1)
        elif isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, (ast.USub, ast.UAdd, ast.Not)):
                raise ExpressionError(f"the operator {type(node.op).__name__} is not allowed")
            self._visit(node.operand, depth + 1)
        elif isinstance(node, ast.BoolOp):
            for value in node.values:
                self._visit(value, depth + 1)
        elif isinstance(node, ast.Compare):
            for op in node.ops:
                if type(op) not in _COMPARE:
                    raise ExpressionError(f"the comparison {type(op).__name__} is not allowed")
            self._visit(node.left, depth + 1)
            for comparator in node.comparators:
                self._visit(comparator, depth + 1)
        elif isinstance(node, ast.Call):
            self._call(node, depth)
        else:
            raise ExpressionError(f"{type(node).__name__} is not allowed in an expression")

    def _call(self, node: ast.Call, depth: int) -> None:
        if not isinstance(node.func, ast.Name):
            if isinstance(node.func, ast.Attribute):
                raise ExpressionError(f"not allowed in an expression: {_REFUSED[ast.Attribute]}")
            raise ExpressionError("only the whitelisted functions can be called")
        name = node.func.id
        self._name(name)
        function = FUNCTIONS.get(name)
        if function is None:
            raise ExpressionError(f"{name}() is not an allowed function (allowed: {', '.join(sorted(FUNCTIONS))})")
        if node.keywords:
            raise ExpressionError(f"{name}() takes positional arguments only")
        if not function.min_args <= len(node.args) <= function.max_args:
            raise ExpressionError(f"{name}() takes {function.doc}; got {len(node.args)} argument(s)")
        for argument in node.args:
            self._visit(argument, depth + 1)

    @staticmethod
    def _name(name: str) -> None:
        if name.startswith("__") or name.endswith("__"):
            raise ExpressionError(f"dunder names such as {name!r} are not allowed")

    @staticmethod
    def _constant(node: ast.Constant) -> None:
        value = node.value
        if isinstance(value, bool) or isinstance(value, (float, str)):
            return
        if isinstance(value, int):
            if abs(value) > MAX_INTEGER_LITERAL:
                raise ExpressionError(f"the integer literal is too large (at most {MAX_INTEGER_LITERAL})")
            return
        raise ExpressionError(f"the constant {value!r} is not allowed (numbers, strings, True and False are)")

    @staticmethod
    def _exponent(node: ast.AST) -> None:
        sign = 1
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            sign = -1 if isinstance(node.op, ast.USub) else 1
            node = node.operand
        if not (isinstance(node, ast.Constant) and isinstance(node.value, (int, float))
                and not isinstance(node.value, bool)):
            raise ExpressionError("the exponent of ** must be a literal number")
        if abs(sign * node.value) > MAX_EXPONENT:
            raise ExpressionError(f"the exponent {sign * node.value} is too large (at most {MAX_EXPONENT} in magnitude)")


class _Evaluator:
    """Interprets a tree that _Checker accepted."""

    def __init__(self, frame: pd.DataFrame):
        self.frame = frame

    def visit(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Constant):
            value = node.value
            return float(value) if isinstance(value, int) and not isinstance(value, bool) else value
        if isinstance(node, ast.Name):
            return self.frame[node.id]
        if isinstance(node, ast.BinOp):
            symbol, apply = _BINARY[type(node.op)]
            left = _numeric(self.visit(node.left), f"`{symbol}`")
            right = _numeric(self.visit(node.right), f"`{symbol}`")
            return apply(left, right)
        if isinstance(node, ast.UnaryOp):
            operand = self.visit(node.operand)
            if isinstance(node.op, ast.Not):
                return ~_boolean(operand) if isinstance(operand, pd.Series) else not operand
            operand = _numeric(operand, "unary minus")
            return -operand if isinstance(node.op, ast.USub) else operand
        if isinstance(node, ast.BoolOp):
            values = [self.visit(v) for v in node.values]
            result = _boolean(values[0])
            for value in values[1:]:
                result = (result & _boolean(value)) if isinstance(node.op, ast.And) else (result | _boolean(value))
            return result
        if isinstance(node, ast.Compare):
            left = self.visit(node.left)
            result: Any = None
            for op, comparator in zip(node.ops, node.comparators):
                right = self.visit(comparator)
                try:
                    outcome = _COMPARE[type(op)](left, right)
                except TypeError as error:
                    raise ExpressionError(f"cannot compare: {error}") from None
                result = outcome if result is None else (_boolean(result) & _boolean(outcome))
                left = right
            return result
        if isinstance(node, ast.Call):
            function = FUNCTIONS[node.func.id]  # type: ignore[attr-defined]
            return function.apply(*[self.visit(a) for a in node.args])
        raise ExpressionError(f"{type(node).__name__} is not allowed in an expression")


def _boolean(value: Any) -> Any:
    if isinstance(value, pd.Series):
        if pd.api.types.is_bool_dtype(value.dtype):
            return value.fillna(False).astype(bool)
        if pd.api.types.is_numeric_dtype(value.dtype):
            return value.fillna(0) != 0
        raise ExpressionError(f"a condition needs true/false or numbers, got a {value.dtype} column")
    return bool(value)
