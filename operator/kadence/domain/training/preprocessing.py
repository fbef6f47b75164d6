"""What sits in front of the estimator.

- Trained on a Dataset's raw columns: numeric columns are imputed (median) and
  standardized, categorical, string and boolean columns imputed and one-hot encoded
  (rare and unseen categories go to one infrequent bucket), datetime columns are left
  out (derive date parts in a FeatureSet to use them).
- Trained on a FeatureSet: the FeatureSet's fitted transformer already produced the
  features; only missing values, if any, are imputed.

The preprocessing has no hyperparameters, so the search fits it once per fold and
reuses the transformed folds for every trial (same result as refitting it inside
each trial's pipeline, at a fraction of the cost).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

NUMERIC = ("float", "int")
CATEGORICAL = ("category", "string", "bool")
LEFT_OUT = ("datetime",)
MAX_ONE_HOT_CATEGORIES = 50


class PreprocessingError(ValueError):
    pass


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    type: str  # float, int, bool, category, string, datetime


def raw_preprocessor(columns: Sequence[ColumnSpec]):
    """A ColumnTransformer for raw Dataset columns."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [c.name for c in columns if c.type in NUMERIC]
    categorical = [c.name for c in columns if c.type in CATEGORICAL]
    unknown = [f"{c.name} ({c.type})" for c in columns if c.type not in NUMERIC + CATEGORICAL + LEFT_OUT]
    if unknown:
        raise PreprocessingError(f"columns of unknown type: {', '.join(unknown)}")
    if not numeric and not categorical:
        raise PreprocessingError("no usable input columns: every column is a datetime (derive date parts in a FeatureSet)")
    steps = []
    if numeric:
        steps.append(("numeric", Pipeline([
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
            ("scale", StandardScaler()),
        ]), numeric))
    if categorical:
        steps.append(("categorical", Pipeline([
            ("impute", SimpleImputer(strategy="most_frequent", keep_empty_features=True)),
            ("one_hot", OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=MAX_ONE_HOT_CATEGORIES,
                                      sparse_output=False)),
        ]), categorical))
    return ColumnTransformer(steps, remainder="drop", verbose_feature_names_out=True)


def feature_preprocessor(has_missing: bool):
    """For FeatureSet features: impute when something is missing, else nothing (None)."""
    if not has_missing:
        return None
    from sklearn.impute import SimpleImputer

    return SimpleImputer(strategy="median", keep_empty_features=True)
