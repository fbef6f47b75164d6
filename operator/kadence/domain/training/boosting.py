"""LightGBM, XGBoost and CatBoost as search families: how they are fitted, stored and compiled.

The libraries come with the optional `boosting` extra (`pip install kadence[boosting]`); a
family whose library is missing is left out of the default family list with that reason, and
naming it in a spec fails the run with the same message.

Fitting (`fit_boosting`, called by `search.fit_weighted` for every fit: CV folds, rungs, the
winner's refit and ensemble members): above `EARLY_STOPPING_ROWS` training rows, a seeded
(stratified) `VALIDATION_FRACTION` of the rows the fit gets is held back and the library's
own early stopping ends the rounds after `PATIENCE` rounds without improvement on it — inside
each CV fold, never on the fold's validation rows, the way scikit-learn's
HistGradientBoosting and AutoGluon do it. Smaller fits run the searched round count.

Class weights: LightGBM (`class_weight`) and CatBoost (`auto_class_weights`) take them
natively; XGBoost has no such parameter, so its `class_weight` ("balanced" or None) is a
parameter Kadence applies at fit time as balanced sample weights (multiplied into any recency
weights) and never hands to XGBoost (`FIT_PARAMETERS`).

Storage: the fitted estimators go into the same skops artifact as every other family; the
exact type names below are trusted (skops rebuilds them from their own model formats —
LightGBM's model string, XGBoost's UBJSON, CatBoost's binary model — not from pickles).

Compiling: onnxmltools' LightGBM, XGBoost and CatBoost converters are registered with
skl2onnx (`register_onnx_converters`), so a pipeline ending in one of them converts whole
and goes through the same verification as any other winner.
"""

from __future__ import annotations

from typing import Any

EARLY_STOPPING_ROWS = 1_000
VALIDATION_FRACTION = 0.1
PATIENCE = 50

LIBRARIES = {"lightgbm": "lightgbm", "xgboost": "xgboost", "catboost": "catboost"}  # family -> module

# Parameters a family searches that Kadence applies when fitting instead of passing on.
FIT_PARAMETERS: dict[str, tuple[str, ...]] = {"xgboost": ("class_weight",)}

TRUSTED_TYPES: frozenset[str] = frozenset({
    "lightgbm.basic.Booster",
    "lightgbm.sklearn.LGBMClassifier",
    "lightgbm.sklearn.LGBMRegressor",
    "xgboost.core.Booster",
    "kadence.domain.training.boosting.XGBClassifier",
    "xgboost.sklearn.XGBRegressor",
    "kadence.domain.training.boosting.CatBoostClassifier",
    "catboost.core.CatBoostRegressor",
    "sklearn.preprocessing._label.LabelEncoder",
    "builtins.bytearray",
})


def catboost_classifier_class():
    """CatBoost's classifier, whose predict returns one label per row as scikit-learn's do
    (CatBoost's own returns a column of shape (rows, 1) for more than two classes)."""
    import catboost

    if "CatBoostClassifier" not in _classes:
        class CatBoostClassifier(catboost.CatBoostClassifier):
            def predict(self, data, *args, **kwargs):
                labels = super().predict(data, *args, **kwargs)
                return labels.ravel() if getattr(labels, "ndim", 1) == 2 and labels.shape[1] == 1 else labels

        CatBoostClassifier.__module__, CatBoostClassifier.__qualname__ = __name__, "CatBoostClassifier"
        _classes["CatBoostClassifier"] = CatBoostClassifier
    return _classes["CatBoostClassifier"]


def xgboost_classifier_class():
    """XGBoost's classifier taking any class labels, as scikit-learn's do (XGBoost's own
    takes only 0 .. k-1): the labels are encoded for XGBoost and decoded in predict."""
    import xgboost

    if "XGBClassifier" not in _classes:
        class XGBClassifier(xgboost.XGBClassifier):
            def fit(self, X, y, *, eval_set=None, **kwargs):
                from sklearn.preprocessing import LabelEncoder

                encoder = LabelEncoder().fit(y)
                if eval_set is not None:
                    eval_set = [(X_eval, encoder.transform(y_eval)) for X_eval, y_eval in eval_set]
                self.__dict__.pop("label_encoder_", None)  # XGBoost's fit checks classes_ against the codes
                super().fit(X, encoder.transform(y), eval_set=eval_set, **kwargs)
                self.label_encoder_ = encoder
                return self

            @property
            def classes_(self):
                encoder = self.__dict__.get("label_encoder_")
                return super().classes_ if encoder is None else encoder.classes_

            def predict(self, X, **kwargs):
                return self.label_encoder_.inverse_transform(super().predict(X, **kwargs))

        XGBClassifier.__module__, XGBClassifier.__qualname__ = __name__, "XGBClassifier"
        _classes["XGBClassifier"] = XGBClassifier
    return _classes["XGBClassifier"]


# The two classes are made on first use (their libraries are optional); skops finds them by name
# (kadence.domain.training.boosting.XGBClassifier) through the module's __getattr__.
_classes: dict[str, type] = {}


def __getattr__(name: str):
    if name == "XGBClassifier":
        return xgboost_classifier_class()
    if name == "CatBoostClassifier":
        return catboost_classifier_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def missing_library(family: str) -> str | None:
    """Why `family` cannot run here (its library is not installed), or None."""
    module = LIBRARIES.get(family)
    if module is None:
        return None
    import importlib.util

    if importlib.util.find_spec(module) is None:
        return f"{module} is not installed (it comes with the kadence[boosting] extra)"
    return None


def library_of(estimator) -> str | None:
    """'lightgbm', 'xgboost' or 'catboost' for an estimator of those libraries, else None."""
    for cls in type(estimator).__mro__:  # Kadence's CatBoostClassifier subclasses CatBoost's
        top = cls.__module__.split(".")[0]
        if top in LIBRARIES.values():
            return top
    return None


def early_stopping_split(y, seed: int, stratify: bool):
    """(fit rows, early-stopping rows) as index arrays; stratified by class when possible."""
    import numpy as np
    from sklearn.model_selection import train_test_split

    indices = np.arange(len(y))
    try:
        return train_test_split(indices, test_size=VALIDATION_FRACTION, random_state=seed,
                                stratify=y if stratify else None)
    except ValueError:  # a class too small to stratify
        return train_test_split(indices, test_size=VALIDATION_FRACTION, random_state=seed)


def balanced_weights(y, sample_weight=None):
    """scikit-learn's 'balanced' class weights per row, times `sample_weight` when given."""
    import numpy as np
    from sklearn.utils.class_weight import compute_sample_weight

    weights = compute_sample_weight("balanced", np.asarray(y))
    return weights if sample_weight is None else weights * np.asarray(sample_weight, dtype=float)


def _rows(a, index):
    return a.iloc[index] if hasattr(a, "iloc") else a[index]


def fit_boosting(estimator, X, y, sample_weight=None, seed: int = 0):
    """Fit a LightGBM/XGBoost/CatBoost estimator, with the library's early stopping on a held-back
    share of the rows above EARLY_STOPPING_ROWS (see the module docstring)."""
    import numpy as np
    from sklearn.base import is_classifier

    library = library_of(estimator)
    if library == "xgboost":
        balanced = getattr(estimator, "kwargs", {}).pop("class_weight", None)
        if balanced == "balanced" and is_classifier(estimator):
            sample_weight = balanced_weights(y, sample_weight)
    y = np.asarray(y)
    if len(y) < EARLY_STOPPING_ROWS:
        if library == "xgboost":
            estimator.set_params(early_stopping_rounds=None)
        return estimator.fit(X, y, sample_weight=sample_weight, **({"verbose": False} if library == "xgboost" else {}))
    fit_rows, stop_rows = early_stopping_split(y, seed, is_classifier(estimator))
    X_fit, y_fit, X_stop, y_stop = _rows(X, fit_rows), y[fit_rows], _rows(X, stop_rows), y[stop_rows]
    w_fit = None if sample_weight is None else np.asarray(sample_weight)[fit_rows]
    w_stop = None if sample_weight is None else np.asarray(sample_weight)[stop_rows]
    if library == "lightgbm":
        import warnings

        import lightgbm

        with warnings.catch_warnings():
            # LightGBM 4.7 deprecates eval_set for eval_X/eval_y, whose labels its classifier does not
            # encode yet (string classes fail): eval_set until that is fixed
            warnings.filterwarnings("ignore", message=".*eval_set.*deprecated")
            return estimator.fit(X_fit, y_fit, sample_weight=w_fit, eval_set=[(X_stop, y_stop)],
                                 eval_sample_weight=None if w_stop is None else [w_stop],
                                 callbacks=[lightgbm.early_stopping(PATIENCE, verbose=False)])
    if library == "xgboost":
        estimator.set_params(early_stopping_rounds=PATIENCE)
        return estimator.fit(X_fit, y_fit, sample_weight=w_fit, eval_set=[(X_stop, y_stop)],
                             sample_weight_eval_set=None if w_stop is None else [w_stop], verbose=False)
    if library == "catboost":
        from catboost import Pool

        return estimator.fit(X_fit, y_fit, sample_weight=w_fit, eval_set=Pool(X_stop, y_stop, weight=w_stop),
                             early_stopping_rounds=PATIENCE, use_best_model=True)
    raise TypeError(f"{type(estimator).__name__} is not a LightGBM, XGBoost or CatBoost estimator")


def rounds_used(estimator) -> int | None:
    """How many boosting rounds the fitted estimator kept (after early stopping)."""
    library = library_of(estimator)
    if library == "lightgbm":
        return int(estimator.best_iteration_ or estimator.n_estimators)
    if library == "xgboost":
        best = getattr(estimator, "best_iteration", None)
        return int(best) + 1 if best is not None else int(estimator.get_booster().num_boosted_rounds())
    if library == "catboost":
        return int(estimator.tree_count_)
    return None


_registered = False


def register_onnx_converters() -> None:
    """Teach skl2onnx the three libraries' estimators through onnxmltools' converters (once;
    a library or onnxmltools that is not installed is skipped)."""
    global _registered
    if _registered:
        return
    _registered = True
    try:
        from skl2onnx import update_registered_converter
        from skl2onnx.common.shape_calculator import (
            calculate_linear_classifier_output_shapes,
            calculate_linear_regressor_output_shapes,
        )
    except ImportError:
        return
    options = {"nocl": [True, False], "zipmap": [True, False, "columns"]}
    entries: list[tuple[str, str, str, str, Any, str]] = [
        ("lightgbm", "LGBMClassifier", "onnxmltools.convert.lightgbm.operator_converters.LightGbm", "convert_lightgbm",
         calculate_linear_classifier_output_shapes, "LightGbmLGBMClassifier"),
        ("lightgbm", "LGBMRegressor", "onnxmltools.convert.lightgbm.operator_converters.LightGbm", "convert_lightgbm",
         calculate_linear_regressor_output_shapes, "LightGbmLGBMRegressor"),
        ("xgboost", "XGBRegressor", "onnxmltools.convert.xgboost.operator_converters.XGBoost", "convert_xgboost",
         calculate_linear_regressor_output_shapes, "XGBoostXGBRegressor"),
    ]
    import importlib

    for library, cls_name, converter_module, converter_name, shapes, alias in entries:
        try:
            cls = getattr(importlib.import_module(library), cls_name)
            converter = getattr(importlib.import_module(converter_module), converter_name)
        except (ImportError, AttributeError):
            continue
        is_classifier = "Classifier" in cls_name
        update_registered_converter(cls, alias, shapes, converter, options=options if is_classifier else None)
    try:
        from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost

        update_registered_converter(xgboost_classifier_class(), "KadenceXGBClassifier",
                                    calculate_linear_classifier_output_shapes, convert_xgboost, options=options)
    except ImportError:
        pass
    try:
        from catboost import CatBoostRegressor
    except ImportError:
        return
    update_registered_converter(catboost_classifier_class(), "KadenceCatBoostClassifier",
                                calculate_linear_classifier_output_shapes, _convert_catboost,
                                parser=_parse_catboost_classifier, options=options)
    update_registered_converter(CatBoostRegressor, "KadenceCatBoostRegressor", calculate_linear_regressor_output_shapes,
                                _convert_catboost)


# onnxmltools has no CatBoost converter; CatBoost exports its own ONNX graph (one tree-ensemble
# node, a ZipMap after it for classifiers), which these two functions splice into skl2onnx's graph
# (the pattern of skl2onnx's "CatBoost in a pipeline" tutorial).


def _parse_catboost_classifier(scope, model, inputs, custom_parsers=None):
    from skl2onnx._parse import _apply_zipmap, _get_sklearn_operator_name
    from skl2onnx.common.data_types import Int64TensorType, StringTensorType, guess_tensor_type

    options = scope.get_options(model, dict(zipmap=True))
    operator = scope.declare_local_operator(_get_sklearn_operator_name(type(model)), model)
    operator.inputs = inputs
    label_type = StringTensorType() if getattr(model.classes_, "dtype", None) is not None and \
        model.classes_.dtype.kind in "OUS" else Int64TensorType()
    operator.outputs.append(scope.declare_local_variable("label", label_type))
    operator.outputs.append(scope.declare_local_variable("probabilities", guess_tensor_type(inputs[0].type)))
    if options["zipmap"] is False:
        return operator.outputs
    return _apply_zipmap(options["zipmap"], scope, model, inputs[0].type, operator.outputs)


def _convert_catboost(scope, operator, container):
    from catboost.utils import convert_to_onnx_object
    from onnx import TensorProto
    from onnx.helper import get_attribute_value

    graph = convert_to_onnx_object(operator.raw_operator).graph
    node = graph.node[0]
    if not node.op_type.startswith("TreeEnsemble") or len(graph.initializer) or len(graph.node) > 2:
        raise NotImplementedError(f"CatBoost exported an unexpected graph ({[n.op_type for n in graph.node]})")
    # CatBoost's graph computes in float32: cast a float64 input in, and its outputs to the types
    # skl2onnx declared for them (float64 probabilities or values for a float64 input)
    features = scope.get_unique_variable_name("catboost_input")
    container.add_node("Cast", [operator.inputs[0].full_name], [features], to=TensorProto.FLOAT,
                       name=scope.get_unique_operator_name("CastIn"))
    results = [scope.get_unique_variable_name("catboost_output") for _ in operator.outputs]
    container.add_node(node.op_type, [features], results, op_domain=node.domain, op_version=1,
                       name=scope.get_unique_operator_name("CatBoost"),
                       **{a.name: get_attribute_value(a) for a in node.attribute})
    for result, output in zip(results, operator.outputs):
        container.add_node("Cast", [result], [output.full_name], to=output.type.to_onnx_type().tensor_type.elem_type,
                           name=scope.get_unique_operator_name("CastOut"))
