"""What the operator hands the Jobs about MLflow and what they hand back; pure (no mlflow import)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..api.common import KadenceModel
from ..api.conditions import ConditionUpdate

TRACKED = "Tracked"
# Stage in force -> the MLflow registered-model alias that mirrors it. Staging is the stage of
# a candidate a person or a promotion policy approved (not yet Production): the challenger.
ALIASES = {"Production": "champion", "Staging": "challenger"}

# Tags on every MLflow run and model version, pointing back to the Kubernetes objects.
TAG_NAMESPACE = "kadence.namespace"
TAG_KIND = "kadence.kind"
TAG_NAME = "kadence.name"
TAG_UID = "kadence.uid"
TAG_ATTEMPT = "kadence.attempt"
TAG_TRIAL = "kadence.trial"
TAG_MODEL_VERSION = "kadence.modelVersion"
TAG_MODEL_VERSION_UID = "kadence.modelVersionUid"


class MlflowTarget(KadenceModel):
    """Where a Job logs: the tracking server and the experiment (the TrainingRun's model)."""

    tracking_uri: str = Field(min_length=1)
    experiment: str = Field(min_length=1)


class TrackingOutcome(KadenceModel):
    """What came of logging the run to MLflow (in the training Job's result)."""

    tracked: bool
    reason: Literal["Logged", "MlflowUnavailable", "MlflowRejected"]
    message: str = ""
    run_id: str | None = None
    experiment_id: str | None = None
    attempts: int = Field(1, ge=1)


def owner_tags(namespace: str, kind: str, name: str, uid: str | None) -> dict[str, str]:
    tags = {TAG_NAMESPACE: namespace, TAG_KIND: kind, TAG_NAME: name}
    if uid:
        tags[TAG_UID] = uid
    return tags


def alias_for(stage: str | None) -> str | None:
    return ALIASES.get(stage or "")


def tracked_condition(outcome: TrackingOutcome | None) -> ConditionUpdate | None:
    """The TrainingRun's Tracked condition from its result (None: the run was not to be logged)."""
    if outcome is None:
        return None
    if outcome.tracked:
        return ConditionUpdate(TRACKED, "True", outcome.reason,
                               f"MLflow run {outcome.run_id} in experiment {outcome.experiment_id}")
    return ConditionUpdate(TRACKED, "False", outcome.reason,
                           f"after {outcome.attempts} attempts: {outcome.message}"[:2000])


def trial_metrics(fold_scores: list[float], score: float | None, metric: str) -> dict[str, float]:
    """A trial's CV metrics as MLflow metrics: cv_<metric> (the mean) and cv_<metric>_fold<i>."""
    metrics = {f"cv_{metric}_fold{i}": float(value) for i, value in enumerate(fold_scores)}
    if score is not None:
        metrics[f"cv_{metric}"] = float(score)
    return metrics


def param_value(value: object) -> str:
    """MLflow params are strings of at most 6000 characters."""
    return str(value)[:6000]


class AliasSyncTask(KadenceModel):
    """`kadence mlflow-sync`: register a ModelVersion in MLflow's model registry (from the MLflow run
    its TrainingRun was logged as) and mirror its stage in force as an alias."""

    tracking_uri: str = Field(min_length=1)
    namespace: str
    model_version: str = Field(description="The ModelVersion's name.")
    model_version_uid: str | None = None
    model: str = Field(description="The registered model's name in MLflow (the ModelVersion's spec.model).")
    version: int = Field(ge=1, description="The ModelVersion's spec.version.")
    run_id: str = Field(min_length=1, description="spec.lineage.mlflowRunId.")
    stage: str = Field(description="The stage in force.")
    release_aliases: list[str] = Field(default_factory=list, description=(
        "Aliases this version may drop if they still point at it: those of stages no version of the model "
        "holds or asks for (releasable_aliases). A version leaving Production for a successor never drops "
        "`champion`: the successor's Job moves it, and MLflow has no conditional delete to order the two."))


def releasable_aliases(stage: str, others: list[tuple[str | None, str | None]]) -> list[str]:
    """The aliases a version in `stage` may delete: those of stages it does not hold that none of
    the model's `others` (their (stage in force, stage asked for)) holds or asks for either."""
    claimed = {s for pair in others for s in pair if s}
    return sorted(alias for held, alias in ALIASES.items() if held != stage and held not in claimed)


def alias_changes(stage: str, version: str, current: dict[str, str],
                  releasable: list[str]) -> tuple[dict[str, str], list[str]]:
    """(aliases to set -> version, aliases to delete) so that the aliases mirror `stage` for
    `version`, given `current` (alias -> version) of the registered model. Another version's
    alias is never touched: moving `champion` to this version moves it away from the old one;
    an alias is deleted only when `releasable` allows it."""
    wanted = alias_for(stage)
    to_set = {wanted: version} if wanted and current.get(wanted) != version else {}
    to_delete = sorted(alias for alias in ALIASES.values()
                       if alias != wanted and current.get(alias) == version and alias in releasable)
    return to_set, to_delete
