"""The skl2onnx converter of `FeatureTransformer`: a FeatureSet's transformation as ONNX, so a
model trained on a FeatureSet compiles whole (raw columns in, one tensor per column) and runs
without Kadence - `kadence models export`, ONNX Runtime in any language, onnxruntime-web.

Each feature is rebuilt from standard ONNX operators (opset 17, ai.onnx.ml 3) with the
transformer's semantics, computed in float64:
- expressions: numbers, numeric/boolean columns, `+ - * / // % **`, unary minus, `not`, `and`,
  `or`, comparisons (chains too) and the functions log, log1p, exp, sqrt, abs, floor, ceil,
  round, clip, where, min, max, isnull, fillna, year, month, day, dayofweek, hour; missing values
  (NaN) behave as in pandas (a comparison with NaN is false, `!=` true; a condition is true when
  non-zero and present);
- oneHot: a string column through ai.onnx.ml LabelEncoder (category -> index, else -1), a
  numeric one by equality with each category's number; the `<other>` column for the rest;
- bucketize, standardScale, minMaxScale, impute: the fitted numbers;
- datePart and the date functions: on a datetime column, fed as int64 milliseconds since the
  Unix epoch in UTC (INT64_MIN for a missing time), by Howard Hinnant's civil-from-days
  arithmetic in int64 (year, month, day, dayOfWeek, dayOfYear, hour, minute).
Not converted, with the reason in the error (training then compiles the estimator alone and the
server runs the transformer in scikit-learn, as before): hash features (murmurhash3 is not a
standard ONNX operator), datePart weekOfYear, string values inside expressions.
The training run checks the whole graph against scikit-learn on the hold-out before anything
uses it (`serving.compiled.verify_compiled`).
"""

from __future__ import annotations

import ast
import math
from typing import Any

import numpy as np

from .expressions import compile_expression
from .transforms import FeatureTransformer

ALIAS = "KadenceFeatureTransformer"
INT64_MIN = np.iinfo(np.int64).min  # a missing time in a datetime input
MS_PER_DAY = 86_400_000
DATE_PARTS = ("year", "month", "day", "dayOfWeek", "dayOfYear", "hour", "minute")
EXPRESSION_DATE_PARTS = {"year": "year", "month": "month", "day": "day", "dayofweek": "dayOfWeek", "hour": "hour"}
_registered = False


class NotConvertible(ValueError):
    """A feature the ONNX graph cannot reproduce; the message names it and why."""


def register_feature_converter() -> None:
    """Teach skl2onnx FeatureTransformer (once; nothing when skl2onnx is not installed)."""
    global _registered
    if _registered:
        return
    try:
        from skl2onnx import update_registered_converter
    except ImportError:
        return
    update_registered_converter(FeatureTransformer, ALIAS, _shape, _convert, options={"float32": [False, True]})
    _registered = True


def _shape(operator) -> None:
    """float64 features, or float32 with the option `float32` (what scikit-learn's trees compare
    in: the features are still computed in float64 from float64 inputs, then rounded once)."""
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    width = len(operator.raw_operator.feature_names_out_)
    float32 = operator.scope_inst.get_options(operator.raw_operator, {"float32": False})["float32"]
    operator.outputs[0].type = (FloatTensorType if float32 else DoubleTensorType)([None, width])


def _convert(scope, operator, container) -> None:
    from onnx import TensorProto

    graph = _Graph(scope, container)
    model: FeatureTransformer = operator.raw_operator
    inputs = {v.raw_name: v for v in operator.inputs}
    columns = _Columns(graph, model, inputs)
    outputs = [out for step in model.steps_ for out in _feature(graph, columns, step)]
    matrix = graph.node("Concat", outputs, axis=1)
    if operator.outputs[0].type.to_onnx_type().tensor_type.elem_type == TensorProto.FLOAT:
        graph.node("Cast", [matrix], to=TensorProto.FLOAT, output=operator.outputs[0].full_name)
    else:
        graph.node("Identity", [matrix], output=operator.outputs[0].full_name)


class _Graph:
    """Node and constant helpers over skl2onnx's scope and container."""

    def __init__(self, scope, container):
        self.scope, self.container = scope, container
        self._constants: dict[tuple, str] = {}

    def node(self, op: str, inputs: list[str], output: str | None = None, domain: str = "", **attributes) -> str:
        output = output or self.scope.get_unique_variable_name(op.lower())
        kwargs = {"op_domain": domain, "op_version": 2} if domain else {}
        self.container.add_node(op, inputs, [output], name=self.scope.get_unique_operator_name(op), **kwargs,
                                **attributes)
        return output

    def constant(self, value: Any, dtype: str = "double") -> str:
        from onnx import TensorProto

        key = (dtype, repr(value))
        if key not in self._constants:
            name = self.scope.get_unique_variable_name("k")
            proto = {"double": TensorProto.DOUBLE, "int64": TensorProto.INT64}[dtype]
            self.container.add_initializer(name, proto, [], [value])
            self._constants[key] = name
        return self._constants[key]

    # double helpers
    def cast(self, name: str, to: str) -> str:
        from onnx import TensorProto

        return self.node("Cast", [name], to={"double": TensorProto.DOUBLE, "int64": TensorProto.INT64,
                                             "bool": TensorProto.BOOL}[to])

    def is_nan(self, x: str) -> str:
        return self.node("IsNaN", [x])

    def nan_where(self, mask: str, x: str) -> str:
        """x, NaN where mask."""
        return self.node("Where", [mask, self.constant(math.nan), x])

    def truthy(self, x: str) -> str:
        """A numeric value as a condition: present and non-zero (pandas: fillna(0) != 0)."""
        nonzero = self.node("Not", [self.node("Equal", [x, self.constant(0.0)])])
        return self.node("And", [nonzero, self.node("Not", [self.is_nan(x)])])


class _Columns:
    """Each raw input as the transformer sees it after coercion: numbers (float64), text, or times."""

    def __init__(self, graph: _Graph, model: FeatureTransformer, inputs: dict):
        self.graph, self.model, self.inputs = graph, model, inputs
        self._numeric: dict[str, str] = {}
        self._millis: dict[str, str] = {}

    def _input(self, column: str):
        if column not in self.inputs:
            raise NotConvertible(f"column {column!r} is not an input of the graph")
        return self.inputs[column]

    def kind(self, column: str) -> str:
        from skl2onnx.common.data_types import StringTensorType

        declared = self.model.input_types_[column]
        if declared == "datetime":
            return "datetime"
        if isinstance(self._input(column).type, StringTensorType):
            if declared in ("float", "int", "bool"):
                raise NotConvertible(f"numeric column {column!r} comes in as strings")
            return "text"
        return "numeric"

    def numeric(self, column: str) -> str:
        if self.kind(column) != "numeric":
            raise NotConvertible(f"column {column!r} is not numeric")
        if column not in self._numeric:
            self._numeric[column] = self.graph.cast(self._input(column).onnx_name, "double")
        return self._numeric[column]

    def text(self, column: str) -> str:
        return self._input(column).onnx_name

    def millis(self, column: str) -> str:
        """int64 milliseconds since the epoch (UTC), INT64_MIN when missing."""
        from skl2onnx.common.data_types import Int64TensorType

        if self.kind(column) != "datetime" or not isinstance(self._input(column).type, Int64TensorType):
            raise NotConvertible(f"datetime column {column!r} must come in as int64 milliseconds since the epoch")
        return self._input(column).onnx_name


# ------------------------------------------------------------------ features


def _feature(graph: _Graph, columns: _Columns, step: dict) -> list[str]:
    kind, name = step["kind"], step["name"]
    try:
        if kind == "expression":
            return [_to_number(graph, _Expression(graph, columns).visit(compile_expression(step["expression"]).tree.body))]
        column = step["column"]
        if kind == "oneHot":
            return _one_hot(graph, columns, column, step)
        if kind == "datePart":
            if step["part"] not in DATE_PARTS:
                raise NotConvertible(f"datePart {step['part']} has no ONNX form")
            return [date_part(graph, columns.millis(column), step["part"])]
        if kind == "hash":
            raise NotConvertible("hash features use murmurhash3, which is not a standard ONNX operator")
        x = columns.numeric(column)
        if kind == "bucketize":
            counts = [graph.cast(graph.node("GreaterOrEqual", [x, graph.constant(b)]), "double")
                      for b in step["boundaries"]]
            total = counts[0] if len(counts) == 1 else graph.node("Sum", counts)
            return [graph.nan_where(graph.is_nan(x), total)]
        if kind == "standardScale":
            return [graph.node("Div", [graph.node("Sub", [x, graph.constant(step["mean"])]), graph.constant(step["scale"])])]
        if kind == "minMaxScale":
            return [graph.node("Div", [graph.node("Sub", [x, graph.constant(step["min"])]), graph.constant(step["range"])])]
        if kind == "impute":
            return [graph.node("Where", [graph.is_nan(x), graph.constant(step["value"]), x])]
    except NotConvertible as error:
        raise NotConvertible(f"feature {name!r}: {error}") from None
    raise NotConvertible(f"feature {name!r}: unknown transform type {kind!r}")


def _one_hot(graph: _Graph, columns: _Columns, column: str, step: dict) -> list[str]:
    categories: list[str] = step["categories"]
    if columns.kind(column) == "text":
        codes = graph.node("LabelEncoder", [columns.text(column)], domain="ai.onnx.ml", keys_strings=categories,
                           values_int64s=list(range(len(categories))), default_int64=-1)
        matches = [graph.node("Equal", [codes, graph.constant(i, "int64")]) for i in range(len(categories))]
        other = graph.node("Less", [codes, graph.constant(0, "int64")])
    else:
        x = columns.numeric(column)
        matches, numbers = [], []
        for text in categories:
            try:
                number = float(text)
            except ValueError:
                number = math.nan  # a text category of a numeric column matches no number
            numbers.append(number)
            matches.append(graph.node("Equal", [x, graph.constant(number)]))
        found = [m for m, n in zip(matches, numbers) if not math.isnan(n)]
        if found:
            any_match = found[0]
            for match in found[1:]:
                any_match = graph.node("Or", [any_match, match])
            other = graph.node("Not", [any_match])
        else:  # no category is a number: every value, missing ones too, is <other>
            other = graph.node("Or", [graph.is_nan(x), graph.node("Not", [graph.is_nan(x)])])
    outputs = [graph.cast(m, "double") for m in matches]
    if step["other"]:  # the `<other>` column: rare, unseen and missing values
        outputs.append(graph.cast(other, "double"))
    return outputs


def date_part(graph: _Graph, millis: str, part: str) -> str:
    """One calendar part (UTC) of int64 epoch milliseconds, as float64 (NaN when missing)."""
    def k(value: int) -> str:
        return graph.constant(value, "int64")

    def op(name: str, a: str, b: str) -> str:
        return graph.node(name, [a, b])

    def floor_div(a: str, b: int) -> str:  # Mod (fmod=0) takes the divisor's sign, as Python's %
        return op("Div", op("Sub", a, graph.node("Mod", [a, k(b)])), k(b))

    missing = op("Equal", millis, k(int(INT64_MIN)))
    safe = graph.node("Where", [missing, k(0), millis])
    days = floor_div(safe, MS_PER_DAY)
    in_day = graph.node("Mod", [safe, k(MS_PER_DAY)])
    if part == "hour":
        value = op("Div", in_day, k(3_600_000))
    elif part == "minute":
        value = graph.node("Mod", [op("Div", in_day, k(60_000)), k(60)])
    elif part == "dayOfWeek":  # 1970-01-01 was a Thursday (Monday=0)
        value = graph.node("Mod", [op("Add", days, k(3)), k(7)])
    else:
        year, month, day = _civil_from_days(graph, days, k, op, floor_div)
        if part == "year":
            value = year
        elif part == "month":
            value = month
        elif part == "day":
            value = day
        else:  # dayOfYear: days since the 1st of January of that year, plus one
            value = op("Add", op("Sub", days, _days_to_january_first(graph, year, k, op, floor_div)), k(1))
    return graph.nan_where(missing, graph.cast(value, "double"))


def _civil_from_days(graph, days, k, op, floor_div):
    """(year, month, day) of days since 1970-01-01 (proleptic Gregorian), all int64."""
    z = op("Add", days, k(719_468))
    era = floor_div(z, 146_097)
    doe = op("Sub", z, op("Mul", era, k(146_097)))
    yoe = op("Div", op("Sub", op("Add", op("Sub", doe, op("Div", doe, k(1460))), op("Div", doe, k(36_524))),
                       op("Div", doe, k(146_096))), k(365))
    doy = op("Sub", doe, op("Sub", op("Add", op("Mul", yoe, k(365)), op("Div", yoe, k(4))), op("Div", yoe, k(100))))
    mp = op("Div", op("Add", op("Mul", doy, k(5)), k(2)), k(153))
    day = op("Add", op("Sub", doy, op("Div", op("Add", op("Mul", mp, k(153)), k(2)), k(5))), k(1))
    month = graph.node("Where", [op("Less", mp, k(10)), op("Add", mp, k(3)), op("Sub", mp, k(9))])
    year = op("Add", op("Add", yoe, op("Mul", era, k(400))), graph.cast(op("LessOrEqual", month, k(2)), "int64"))
    return year, month, day


def _days_to_january_first(graph, year, k, op, floor_div):
    """Days since 1970-01-01 of the 1st of January of `year` (int64)."""
    shifted = op("Sub", year, k(1))  # January counts in the previous March-based year
    era = floor_div(shifted, 400)
    yoe = op("Sub", shifted, op("Mul", era, k(400)))
    doe = op("Add", op("Sub", op("Add", op("Mul", yoe, k(365)), op("Div", yoe, k(4))), op("Div", yoe, k(100))),
             k(306))
    return op("Sub", op("Add", op("Mul", era, k(146_097)), doe), k(719_468))


# ------------------------------------------------------------------ expressions

# Values: ("number", name) float64, ("bool", name), ("time", name) int64 ms, ("const", python value)


def _to_number(graph: _Graph, value: tuple) -> str:
    kind, payload = value
    if kind == "number":
        return payload
    if kind == "bool":
        return graph.cast(payload, "double")
    if kind == "const":
        raise NotConvertible("an expression without any column is not converted")
    raise NotConvertible("an expression giving times is not a feature")


class _Expression:
    """Compiles a checked expression tree (see expressions._Evaluator for the semantics)."""

    def __init__(self, graph: _Graph, columns: _Columns):
        self.graph, self.columns = graph, columns

    def number(self, value: tuple, what: str) -> str | float:
        kind, payload = value
        if kind == "number":
            return payload
        if kind == "bool":
            return self.graph.cast(payload, "double")
        if kind == "const" and isinstance(payload, (bool, int, float)):
            return float(payload)
        raise NotConvertible(f"{what} needs numbers")

    def tensor(self, value: str | float) -> str:
        return self.graph.constant(float(value)) if isinstance(value, float) else value

    def condition(self, value: tuple) -> str | bool:
        kind, payload = value
        if kind == "bool":
            return payload
        if kind == "number":
            return self.graph.truthy(payload)
        if kind == "const" and isinstance(payload, (bool, int, float)):
            return bool(payload)
        raise NotConvertible("a condition needs true/false or numbers")

    def visit(self, node: ast.AST) -> tuple:
        graph = self.graph
        if isinstance(node, ast.Constant):
            if isinstance(node.value, str) or node.value is None:
                raise NotConvertible("text values in expressions are not converted")
            return ("const", float(node.value) if isinstance(node.value, int) and not isinstance(node.value, bool)
                    else node.value)
        if isinstance(node, ast.Name):
            kind = self.columns.kind(node.id)
            if kind == "text":
                raise NotConvertible(f"text column {node.id!r} in an expression is not converted")
            if kind == "datetime":
                return ("time", self.columns.millis(node.id))
            return ("number", self.columns.numeric(node.id))
        if isinstance(node, ast.BinOp):
            return self.binary(node)
        if isinstance(node, ast.UnaryOp):
            operand = self.visit(node.operand)
            if isinstance(node.op, ast.Not):
                condition = self.condition(operand)
                return ("const", not condition) if isinstance(condition, bool) else ("bool", graph.node("Not", [condition]))
            number = self.number(operand, "unary minus")
            if isinstance(node.op, ast.UAdd):
                return ("number", number) if isinstance(number, str) else ("const", number)
            return ("const", -number) if isinstance(number, float) else ("number", graph.node("Neg", [number]))
        if isinstance(node, ast.BoolOp):
            conditions = [self.condition(self.visit(v)) for v in node.values]
            return self.combine("And" if isinstance(node.op, ast.And) else "Or", conditions)
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        raise NotConvertible(f"{type(node).__name__} is not converted")

    def combine(self, op: str, conditions: list) -> tuple:
        if all(isinstance(c, bool) for c in conditions):
            return ("const", all(conditions) if op == "And" else any(conditions))
        tensors = [c for c in conditions if not isinstance(c, bool)]
        constants = [c for c in conditions if isinstance(c, bool)]
        if op == "And" and not all(constants):
            return ("const", False)  # (pandas would give a Series of False: as a number 0.0)
        if op == "Or" and any(constants):
            return ("const", True)
        result = tensors[0]
        for other in tensors[1:]:
            result = self.graph.node(op, [result, other])
        return ("bool", result)

    def binary(self, node: ast.BinOp) -> tuple:
        graph = self.graph
        symbol = type(node.op).__name__
        a = self.number(self.visit(node.left), symbol)
        b = self.number(self.visit(node.right), symbol)
        if isinstance(a, float) and isinstance(b, float):
            raise NotConvertible("arithmetic on constants alone is not converted")
        x, y = self.tensor(a), self.tensor(b)
        if isinstance(node.op, ast.Add):
            return ("number", graph.node("Add", [x, y]))
        if isinstance(node.op, ast.Sub):
            return ("number", graph.node("Sub", [x, y]))
        if isinstance(node.op, ast.Mult):
            return ("number", graph.node("Mul", [x, y]))
        if isinstance(node.op, ast.Div):
            return ("number", graph.node("Div", [x, y]))
        if isinstance(node.op, ast.FloorDiv):
            return ("number", graph.node("Floor", [graph.node("Div", [x, y])]))
        if isinstance(node.op, ast.Mod):  # numpy: the remainder takes the divisor's sign
            r = graph.node("Mod", [x, y], fmod=1)
            zero = graph.constant(0.0)
            differs = graph.node("Xor", [graph.node("Less", [r, zero]), graph.node("Less", [y, zero])])
            fix = graph.node("And", [differs, graph.node("Not", [graph.node("Equal", [r, zero])])])
            return ("number", graph.node("Where", [fix, graph.node("Add", [r, y]), r]))
        if isinstance(node.op, ast.Pow):
            return ("number", graph.node("Pow", [x, y]))
        raise NotConvertible(f"operator {symbol} is not converted")

    def compare(self, node: ast.Compare) -> tuple:
        graph = self.graph
        ops = {ast.Lt: "Less", ast.LtE: "LessOrEqual", ast.Gt: "Greater", ast.GtE: "GreaterOrEqual", ast.Eq: "Equal"}
        left = self.visit(node.left)
        results = []
        for op, comparator in zip(node.ops, node.comparators):
            right = self.visit(comparator)
            a, b = self.number(left, "a comparison"), self.number(right, "a comparison")
            if isinstance(a, float) and isinstance(b, float):
                raise NotConvertible("a comparison of constants alone is not converted")
            x, y = self.tensor(a), self.tensor(b)
            if isinstance(op, ast.NotEq):  # NaN != x is true, as in pandas
                results.append(graph.node("Not", [graph.node("Equal", [x, y])]))
            elif type(op) in ops:
                results.append(graph.node(ops[type(op)], [x, y]))
            else:
                raise NotConvertible(f"comparison {type(op).__name__} is not converted")
            left = right
        return self.combine("And", results)

    def call(self, node: ast.Call) -> tuple:
        graph = self.graph
        name = node.func.id  # type: ignore[attr-defined]
        args = [self.visit(a) for a in node.args]
        if name in EXPRESSION_DATE_PARTS:
            if args[0][0] != "time":
                raise NotConvertible(f"{name}() needs a datetime column")
            return ("number", date_part(graph, args[0][1], EXPRESSION_DATE_PARTS[name]))
        if name == "where":
            condition = self.condition(args[0])
            if isinstance(condition, bool):
                return args[1] if condition else args[2]
            if args[1][0] == "bool" and args[2][0] == "bool":
                return ("bool", graph.node("Where", [condition, args[1][1], args[2][1]]))
            a, b = (self.tensor(self.number(v, "where()")) for v in args[1:])
            return ("number", graph.node("Where", [condition, a, b]))
        if name == "isnull":
            if args[0][0] == "const":
                raise NotConvertible("isnull() of a constant is not converted")
            if args[0][0] == "time":
                return ("bool", graph.node("Equal", [args[0][1], graph.constant(int(INT64_MIN), "int64")]))
            return ("bool", graph.is_nan(self.tensor(self.number(args[0], "isnull()"))))
        numbers = [self.number(a, f"{name}()") for a in args]
        if all(isinstance(n, float) for n in numbers):
            raise NotConvertible(f"{name}() of constants alone is not converted")
        x, *rest = [self.tensor(n) for n in numbers]
        unary = {"log": "Log", "exp": "Exp", "sqrt": "Sqrt", "abs": "Abs", "floor": "Floor", "ceil": "Ceil"}
        if name in unary:
            return ("number", graph.node(unary[name], [x]))
        if name == "log1p":
            return ("number", graph.node("Log", [graph.node("Add", [x, graph.constant(1.0)])]))
        if name == "round":
            digits = numbers[1] if len(numbers) > 1 else 0.0
            if not isinstance(digits, float):
                raise NotConvertible("round() takes a literal number of digits")
            scale = graph.constant(10.0 ** digits)
            return ("number", graph.node("Div", [graph.node("Round", [graph.node("Mul", [x, scale])]), scale]))
        if name == "fillna":
            return ("number", graph.node("Where", [graph.is_nan(x), rest[0], x]))
        if name in ("min", "max", "clip"):
            if name == "clip":
                value = graph.node("Min", [graph.node("Max", [x, rest[0]]), rest[1]])
                nan = graph.node("Or", [graph.is_nan(x), graph.node("Or", [graph.is_nan(rest[0]), graph.is_nan(rest[1])])])
            else:
                value = graph.node("Min" if name == "min" else "Max", [x, rest[0]])
                nan = graph.node("Or", [graph.is_nan(x), graph.is_nan(rest[0])])
            return ("number", graph.nan_where(nan, value))  # numpy propagates NaN
        raise NotConvertible(f"function {name}() is not converted")
