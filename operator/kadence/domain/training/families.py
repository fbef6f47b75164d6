"""The scikit-learn model families: which tasks they fit, their default search
spaces, and how a set of sampled parameters becomes an estimator.

A search space maps an estimator parameter to a `ParameterRange` (numeric bounds,
integer and/or log scale, or a list of choices). A user narrows a family's space
with `space` overrides: a known parameter's range is replaced, a new estimator
parameter is added (it must be one the estimator accepts).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ...api.trainingrun import ParameterRange
from . import boosting

R = ParameterRange  # short alias for the tables below

HIGHEST = "highest"  # in a portfolio entry: the top of the parameter's searched range


class FamilyError(ValueError):
    pass


@dataclass(frozen=True)
class Family:
    name: str
    tasks: tuple[str, ...]
    # (task) -> estimator class
    estimator_class: Callable[[str], type]
    # (task) -> default space
    default_space: Callable[[str], dict[str, ParameterRange]]
    # fixed parameters that are not searched: (task, metric, seed, threads) -> kwargs
    fixed: Callable[[str, str, int, int], dict[str, Any]] = lambda task, metric, seed, threads: {}
    # scale-sensitive: distances, margins or penalties depend on feature scale
    needs_scaling: bool = False
    # left out of the default family list above this many training rows (fits grow
    # faster than linearly with rows); listing the family explicitly still uses it
    default_max_rows: int | None = None
    # metrics this family cannot produce for the task (e.g. no probabilities)
    unsupported_metrics: Callable[[str, int], frozenset[str]] = lambda task, n_classes: frozenset()
    # no predict_proba of its own: wrapped in a sigmoid calibration when a metric needs
    # probabilities (log_loss; roc_auc with more than two classes)
    calibrate_for_probabilities: bool = False
    # the boosting-rounds parameter that the estimator's own early stopping cuts short,
    # and above how many training rows that early stopping is on: on such data the
    # default point puts the rounds at the top of their range (see `default_point`)
    rounds: str | None = None
    early_stopping_rows: int | None = None
    # known-good configurations the tpe search tries after every family's default point,
    # before it models (see `portfolio_points`); estimator parameters, HIGHEST = the top
    # of the searched range
    portfolio: tuple[Mapping[str, Any], ...] = ()
    # the library's own defaults where its constructor says None ("the library decides"):
    # what `default_point` starts from
    defaults: Mapping[str, Any] = field(default_factory=dict)
    notes: str = ""


def _import(path: str) -> type:
    module, _, name = path.rpartition(".")
    import importlib

    return getattr(importlib.import_module(module), name)


def _by_task(classification: str | None, regression: str | None) -> Callable[[str], type]:
    def pick(task: str) -> type:
        path = classification if task == "classification" else regression
        if path is None:
            raise FamilyError(f"no estimator for task {task}")
        return _import(path)

    return pick


def _trees_space(task: str) -> dict[str, ParameterRange]:
    return {
        "n_estimators": R(low=50, high=300, integer=True),
        "max_depth": R(low=3, high=30, integer=True),
        "min_samples_leaf": R(low=1, high=20, integer=True, log=True),
        "max_features": R(low=0.1, high=1.0),
    }


def _with_seed(task, metric, seed, threads):
    return {"random_state": seed}


def _forest_fixed(task, metric, seed, threads):
    return {"random_state": seed, "n_jobs": threads}


FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        Family(
            name="logistic_regression",
            tasks=("classification",),
            estimator_class=_by_task("sklearn.linear_model.LogisticRegression", None),
            default_space=lambda task: {
                "C": R(low=1e-3, high=100.0, log=True),
                "class_weight": R(choices=[None, "balanced"]),
            },
            fixed=lambda task, metric, seed, threads: {"max_iter": 2000, "random_state": seed},
            needs_scaling=True,
        ),
        Family(
            name="linear_regression",
            tasks=("regression",),
            estimator_class=_by_task(None, "sklearn.linear_model.LinearRegression"),
            default_space=lambda task: {"fit_intercept": R(choices=[True, False])},
            needs_scaling=True,
        ),
        Family(
            name="ridge",
            tasks=("classification", "regression"),
            estimator_class=_by_task("sklearn.linear_model.RidgeClassifier", "sklearn.linear_model.Ridge"),
            default_space=lambda task: {"alpha": R(low=1e-3, high=1000.0, log=True)},
            fixed=lambda task, metric, seed, threads: {"random_state": seed},
            needs_scaling=True,
            # RidgeClassifier has a decision function but no probabilities.
            unsupported_metrics=lambda task, n_classes: (
                frozenset({"log_loss"} | ({"roc_auc"} if n_classes > 2 else set()))
                if task == "classification" else frozenset()
            ),
        ),
        Family(
            name="random_forest",
            tasks=("classification", "regression"),
            estimator_class=_by_task("sklearn.ensemble.RandomForestClassifier",
                                     "sklearn.ensemble.RandomForestRegressor"),
            default_space=_trees_space,
            fixed=_forest_fixed,
        ),
        Family(
            name="extra_trees",
            tasks=("classification", "regression"),
            estimator_class=_by_task("sklearn.ensemble.ExtraTreesClassifier", "sklearn.ensemble.ExtraTreesRegressor"),
            default_space=_trees_space,
            fixed=_forest_fixed,
        ),
        Family(
            name="gradient_boosting",
            tasks=("classification", "regression"),
            estimator_class=_by_task("sklearn.ensemble.GradientBoostingClassifier",
                                     "sklearn.ensemble.GradientBoostingRegressor"),
            default_space=lambda task: {
                "n_estimators": R(low=50, high=300, integer=True),
                "learning_rate": R(low=0.01, high=0.3, log=True),
                "max_depth": R(low=2, high=6, integer=True),
                "subsample": R(low=0.5, high=1.0),
            },
            fixed=_with_seed,
            default_max_rows=200_000,
        ),
        Family(
            name="hist_gradient_boosting",
            tasks=("classification", "regression"),
            estimator_class=_by_task("sklearn.ensemble.HistGradientBoostingClassifier",
                                     "sklearn.ensemble.HistGradientBoostingRegressor"),
            default_space=lambda task: {
                "learning_rate": R(low=0.01, high=0.3, log=True),
                "max_iter": R(low=50, high=500, integer=True),
                "max_leaf_nodes": R(low=8, high=128, integer=True, log=True),
                "min_samples_leaf": R(low=5, high=100, integer=True, log=True),
                "l2_regularization": R(low=1e-6, high=10.0, log=True),
            },
            fixed=_with_seed,
            # early_stopping="auto": on a 10 % validation split above 10,000 rows
            rounds="max_iter",
            early_stopping_rows=10_000,
            # AutoGluon's "LightGBMLarge", which its presets fit beside LightGBM's defaults:
            # learning rate 0.03, 128 leaves, at least 5 rows per leaf, 90 % of the features,
            # rounds until early stopping (parameters outside the searched space keep
            # their fixed values)
            portfolio=({"learning_rate": 0.03, "max_leaf_nodes": 128, "min_samples_leaf": 5, "max_features": 0.9,
                        "max_iter": HIGHEST},),
        ),
        Family(
            name="lightgbm",
            tasks=("classification", "regression"),
            estimator_class=_by_task("lightgbm.LGBMClassifier", "lightgbm.LGBMRegressor"),
            default_space=lambda task: {
                "n_estimators": R(low=50, high=1000, integer=True, log=True),
                "learning_rate": R(low=0.01, high=0.3, log=True),
                "num_leaves": R(low=8, high=256, integer=True, log=True),
                "min_child_samples": R(low=5, high=100, integer=True, log=True),
                "colsample_bytree": R(low=0.4, high=1.0),
                "subsample": R(low=0.5, high=1.0),
                "reg_lambda": R(low=1e-6, high=10.0, log=True),
                **({"class_weight": R(choices=[None, "balanced"])} if task == "classification" else {}),
            },
            fixed=lambda task, metric, seed, threads: {
                "random_state": seed, "n_jobs": threads, "deterministic": True, "force_col_wise": True,
                "subsample_freq": 1, "verbose": -1},
            rounds="n_estimators",
            early_stopping_rows=boosting.EARLY_STOPPING_ROWS,
            # AutoGluon's LightGBMLarge (see hist_gradient_boosting)
            portfolio=({"learning_rate": 0.03, "num_leaves": 128, "min_child_samples": 5, "colsample_bytree": 0.9,
                        "n_estimators": HIGHEST},),
        ),
        Family(
            name="xgboost",
            tasks=("classification", "regression"),
            estimator_class=lambda task: (boosting.xgboost_classifier_class() if task == "classification"
                                          else _import("xgboost.XGBRegressor")),
            default_space=lambda task: {
                "n_estimators": R(low=50, high=1000, integer=True, log=True),
                "learning_rate": R(low=0.01, high=0.3, log=True),
                "max_depth": R(low=3, high=10, integer=True),
                "min_child_weight": R(low=0.5, high=20.0, log=True),
                "subsample": R(low=0.5, high=1.0),
                "colsample_bytree": R(low=0.4, high=1.0),
                "reg_lambda": R(low=1e-3, high=10.0, log=True),
                **({"class_weight": R(choices=[None, "balanced"])} if task == "classification" else {}),
            },
            fixed=lambda task, metric, seed, threads: {
                "random_state": seed, "n_jobs": threads, "tree_method": "hist"},
            rounds="n_estimators",
            early_stopping_rows=boosting.EARLY_STOPPING_ROWS,
            defaults={"learning_rate": 0.3, "max_depth": 6, "min_child_weight": 1.0, "subsample": 1.0,
                      "colsample_bytree": 1.0, "reg_lambda": 1.0},
        ),
        Family(
            name="catboost",
            tasks=("classification", "regression"),
            estimator_class=lambda task: (boosting.catboost_classifier_class() if task == "classification"
                                          else _import("catboost.CatBoostRegressor")),
            default_space=lambda task: {
                "iterations": R(low=50, high=1000, integer=True, log=True),
                "learning_rate": R(low=0.02, high=0.3, log=True),
                "depth": R(low=4, high=8, integer=True),
                "l2_leaf_reg": R(low=1.0, high=10.0, log=True),
                **({"auto_class_weights": R(choices=[None, "Balanced"])} if task == "classification" else {}),
            },
            fixed=lambda task, metric, seed, threads: {
                "random_seed": seed, "thread_count": threads, "verbose": 0, "allow_writing_files": False},
            rounds="iterations",
            early_stopping_rows=boosting.EARLY_STOPPING_ROWS,
            # CatBoost picks its learning rate from the data when given none; 0.1 is its
            # usual pick for a few thousand rows at 1,000 iterations
            defaults={"learning_rate": 0.1, "depth": 6, "l2_leaf_reg": 3.0},
            default_max_rows=100_000,
            notes="symmetric trees: several times slower per round than LightGBM on 2 cores",
        ),
        Family(
            name="knn",
            tasks=("classification", "regression"),
            estimator_class=_by_task("sklearn.neighbors.KNeighborsClassifier",
                                     "sklearn.neighbors.KNeighborsRegressor"),
            default_space=lambda task: {
                "n_neighbors": R(low=3, high=50, integer=True, log=True),
                "weights": R(choices=["uniform", "distance"]),
                "p": R(choices=[1, 2]),
            },
            fixed=lambda task, metric, seed, threads: {"n_jobs": threads},
            needs_scaling=True,
            default_max_rows=50_000,
        ),
        Family(
            name="svm",
            tasks=("classification", "regression"),
            estimator_class=_by_task("sklearn.svm.SVC", "sklearn.svm.SVR"),
            default_space=lambda task: (
                {"C": R(low=1e-2, high=100.0, log=True), "gamma": R(low=1e-4, high=1.0, log=True)}
                if task == "classification" else
                {"C": R(low=1e-2, high=100.0, log=True), "gamma": R(low=1e-4, high=1.0, log=True),
                 "epsilon": R(low=1e-3, high=1.0, log=True)}
            ),
            fixed=lambda task, metric, seed, threads: (
                {"kernel": "rbf", "random_state": seed} if task == "classification" else {"kernel": "rbf"}
            ),
            calibrate_for_probabilities=True,
            needs_scaling=True,
            default_max_rows=20_000,
            notes="kernel SVM fits grow quadratically with rows",
        ),
    )
}


def family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise FamilyError(f"unknown model family {name!r}; known: {', '.join(FAMILIES)}") from None


def families_for_task(task: str) -> list[str]:
    return [name for name, f in FAMILIES.items() if task in f.tasks]


def default_families(task: str, metric: str, n_classes: int, training_rows: int) -> tuple[list[str], list[str]]:
    """The families used when the spec lists none: every family fitting the task and
    metric, minus those too slow for this many rows. Returns (chosen, left out with why)."""
    chosen, left_out = [], []
    for name in families_for_task(task):
        f = FAMILIES[name]
        if metric in f.unsupported_metrics(task, n_classes):
            left_out.append(f"{name} (cannot compute {metric})")
        elif (missing := boosting.missing_library(name)) is not None:
            left_out.append(f"{name} ({missing})")
        elif f.default_max_rows is not None and training_rows > f.default_max_rows:
            left_out.append(f"{name} ({training_rows} rows > {f.default_max_rows}; list it to use it anyway)")
        else:
            chosen.append(name)
    return chosen, left_out


def check_family_fits(name: str, task: str, metric: str, n_classes: int) -> None:
    f = family(name)
    if task not in f.tasks:
        raise FamilyError(f"model family {name} does not fit the task {task} (it fits {', '.join(f.tasks)})")
    if metric in f.unsupported_metrics(task, n_classes):
        raise FamilyError(f"model family {name} cannot compute the metric {metric} for this task")
    if (missing := boosting.missing_library(name)) is not None:
        raise FamilyError(f"model family {name} cannot run here: {missing}")


def accepted_parameters(name: str, task: str) -> set[str]:
    cls = family(name).estimator_class(task)
    # get_params, not the signature: XGBoost's constructor takes most parameters as **kwargs
    # and the signature: CatBoost's get_params lists only the parameters that were set
    signature = set(inspect.signature(cls.__init__).parameters) - {"self", "args", "kwargs"}
    return signature | set(cls().get_params(deep=False)) | set(boosting.FIT_PARAMETERS.get(name, ()))


def resolve_space(name: str, task: str, overrides: Mapping[str, ParameterRange] | None = None) -> dict[str, ParameterRange]:
    """The family's default space with the user's overrides applied."""
    f = family(name)
    space = dict(f.default_space(task))
    if overrides:
        accepted = accepted_parameters(name, task)
        fixed_keys = set(f.fixed(task, "", 0, 1))
        for parameter, value in overrides.items():
            if parameter not in accepted:
                raise FamilyError(
                    f"{name}: {parameter!r} is not a parameter of {f.estimator_class(task).__name__}"
                )
            if parameter in fixed_keys and parameter not in space:
                raise FamilyError(f"{name}: {parameter!r} is set by Kadence and cannot be searched")
            space[parameter] = value
    return dict(sorted(space.items()))


def needs_probabilities(metric: str, n_classes: int) -> bool:
    return metric == "log_loss" or (metric == "roc_auc" and n_classes > 2)


def build_estimator(name: str, task: str, params: Mapping[str, Any], *, metric: str, seed: int,
                    threads: int = 1, scale: bool = False, n_classes: int = 2):
    """An unfitted estimator (with a StandardScaler in front when `scale` and the family
    is scale-sensitive)."""
    f = family(name)
    cls = f.estimator_class(task)
    kwargs = {**f.fixed(task, metric, seed, threads), **params}
    estimator = cls(**kwargs)
    if task == "classification" and f.calibrate_for_probabilities and needs_probabilities(metric, n_classes):
        from sklearn.calibration import CalibratedClassifierCV

        estimator = CalibratedClassifierCV(estimator, method="sigmoid", cv=3, ensemble=False)
    if scale and f.needs_scaling:
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler

        return Pipeline([("scale", StandardScaler()), ("estimator", estimator)])
    return estimator


def _into_range(value: Any, rng: ParameterRange) -> Any:
    """A value moved into a numeric range: clipped when numeric, the range's top for
    HIGHEST, the range's centre when the range cannot hold it (None, "sqrt" …); rounded
    for an integer range."""
    import math

    low, high = float(rng.low), float(rng.high)
    if value == HIGHEST:
        value = high
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        value = min(max(float(value), low), high)
    elif rng.log:
        value = math.exp((math.log(low) + math.log(high)) / 2)
    else:
        value = (low + high) / 2
    return min(max(int(round(value)), math.ceil(low)), math.floor(high)) if rng.integer else value


def stops_early(name: str, train_rows: int | None) -> bool:
    """Whether the family's estimator ends its boosting rounds by early stopping when it
    trains on this many rows (unknown rows: no)."""
    f = family(name)
    return f.early_stopping_rows is not None and train_rows is not None and train_rows > f.early_stopping_rows


def _point(name: str, task: str, space: Mapping[str, ParameterRange], overrides: Mapping[str, Any],
           train_rows: int | None) -> dict[str, Any]:
    """The estimator's defaults with `overrides` on top, every searched parameter moved
    into its range (a choice the range does not list becomes its first choice). Rounds
    asked as HIGHEST stay at the estimator's default where no early stopping would end
    them."""
    f = family(name)
    defaults = {**{p.name: p.default for p in inspect.signature(f.estimator_class(task).__init__)
                   .parameters.values() if p.default is not inspect.Parameter.empty}, **f.defaults}
    if f.rounds is not None and overrides.get(f.rounds) == HIGHEST and not stops_early(name, train_rows):
        overrides = {k: v for k, v in overrides.items() if k != f.rounds}
    values = {**defaults, **overrides}
    point: dict[str, Any] = {}
    for parameter, rng in space.items():
        value = values.get(parameter)
        if rng.choices is not None:
            point[parameter] = value if value in rng.choices else rng.choices[0]
        else:
            point[parameter] = _into_range(value, rng)
    return point


def default_point(name: str, task: str, space: Mapping[str, ParameterRange], train_rows: int | None = None
                  ) -> dict[str, Any]:
    """The estimator's own defaults, moved into the (possibly narrowed) space: a numeric
    default is clipped to the range, a default the range cannot hold (None, "sqrt" …)
    becomes the range's centre, a default outside the choices the first choice.
    scikit-learn's defaults are good starting points, so the tpe search tries them first.
    One exception: when the estimator will stop early on `train_rows` rows (each fold's
    training rows), a boosting family's round count (`Family.rounds`) is at the top of
    its range, so that early stopping, not the count, ends the fit — the way AutoGluon
    runs LightGBM's defaults (10,000 rounds and early stopping) — where scikit-learn's
    default (100 iterations) is a cap chosen for speed."""
    f = family(name)
    return _point(name, task, space, {f.rounds: HIGHEST} if f.rounds else {}, train_rows)


def portfolio_points(name: str, task: str, space: Mapping[str, ParameterRange], train_rows: int | None = None
                     ) -> list[dict[str, Any]]:
    """The family's default point, then its known-good configurations (`Family.portfolio`)
    moved into the space the same way; a configuration that lands on an earlier point
    is left out."""
    points = [default_point(name, task, space, train_rows)]
    for entry in family(name).portfolio:
        point = _point(name, task, space, entry, train_rows)
        if point not in points:
            points.append(point)
    return points
