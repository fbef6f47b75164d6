"""spec.segments, shared by TrainingRun (judged on the hold-out), MonitorPolicy (the quality window
and the champion/challenger comparison) and InferenceService canary analysis (the canary's
labelled feedback): the metric per segment and fairness on a sensitive attribute, with gates."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from .common import KadenceModel, cel

ColumnName = Annotated[str, Field(min_length=1, max_length=128)]


class SegmentPolicy(KadenceModel):
    """Report the metric per value of each segment column and, for the sensitive attribute,
    fairlearn's demographic-parity and equalized-odds differences (two-class models); the gates
    block a promotion or breach the policy, naming the worst segment and its numbers."""

    model_config = {"json_schema_extra": {"x-kubernetes-validations": [
        cel("(has(self.columns) && size(self.columns) > 0) || has(self.sensitiveAttribute)",
            "segments needs columns or a sensitiveAttribute"),
        cel("!has(self.maxDisparity) || has(self.sensitiveAttribute)", "maxDisparity needs a sensitiveAttribute",
            "maxDisparity"),
    ]}}

    columns: list[ColumnName] = Field(default_factory=list, max_length=8, description=(
        "Input columns whose values are segments, e.g. [region]: the metric is reported for each value."),
        json_schema_extra={"x-kubernetes-list-type": "set"})
    sensitive_attribute: str | None = Field(None, min_length=1, max_length=128, description=(
        "An input column whose groups must be treated alike, e.g. gender: its demographic-parity and "
        "equalized-odds differences are reported (and its per-group metric)."))
    min_segment_metric: float | None = Field(None, ge=0, description=(
        "Every segment with minRows rows must reach this value of the metric (stay under it for rmse/mae)."))
    max_disparity: float | None = Field(None, ge=0, le=1, description=(
        "The largest demographic-parity or equalized-odds difference allowed for the sensitive attribute."))
    min_rows: int = Field(30, ge=1, le=1_000_000, description=(
        "Rows a segment (or group) needs to be judged; smaller ones are reported but not judged."))

    @model_validator(mode="after")
    def _needs_something(self) -> "SegmentPolicy":
        if not self.columns and not self.sensitive_attribute:
            raise ValueError("segments needs columns or a sensitiveAttribute")
        if self.max_disparity is not None and not self.sensitive_attribute:
            raise ValueError("maxDisparity needs a sensitiveAttribute")
        return self

    @property
    def all_columns(self) -> list[str]:
        """The segment columns and the sensitive attribute, each once."""
        return list(dict.fromkeys([*self.columns, *([self.sensitive_attribute] if self.sensitive_attribute else [])]))


SEGMENTS_LIMIT = 100


class SegmentValue(KadenceModel):
    column: str
    segment: str = Field(description="The column's value; (missing) for nulls.")
    rows: int = Field(ge=0)
    value: float | None = Field(None, description="The metric on the segment's rows.")
    judged: bool = Field(description="Enough rows (minRows) and a metric: the gate judged it.")
    unavailable: str | None = Field(None, description="Why it was not judged.")


class DisparityResult(KadenceModel):
    attribute: str
    groups: int = Field(ge=0, description="Groups with minRows rows, the ones compared.")
    demographic_parity_difference: float | None = Field(
        None, description="fairlearn: the largest gap in selection rate (share predicted positive) between groups.")
    equalized_odds_difference: float | None = Field(
        None, description="fairlearn: the larger of the largest true- and false-positive-rate gaps between groups.")
    selection_rates: dict[str, float] | None = None
    unavailable: str | None = Field(None, description="Why a difference is missing (regression, more classes).")


class SegmentResult(KadenceModel):
    """The metric per segment, the sensitive attribute's disparity, and the gates' verdict."""

    metric: str
    segments: list[SegmentValue] = Field(default_factory=list, max_length=SEGMENTS_LIMIT,
                                         description=f"At most {SEGMENTS_LIMIT}: the judged worst first.")
    disparity: DisparityResult | None = None
    skipped: dict[str, str] | None = Field(None, description="Columns not reported, and why.")
    passed: bool
    reason: str = Field(description="SegmentsPassed, SegmentsNotJudged, SegmentBelowThreshold or DisparityAboveLimit.")
    message: str
