"""Registry rules (stage changes, history, artifact verification) and the safe artifact format."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

from kadence.domain import registry
from kadence.domain.registry import Actor, TransitionError, VersionState, plan_stage_change
from kadence.domain.training import artifact as artifacts
from kadence.domain.training import families as fam
from kadence.domain.training.space import grid


def v(name, version, stage, model="churn"):
    return VersionState(name=name, model=model, version=version, stage=stage)


ALICE = Actor(by="alice@example.com", reason="better recall")


def test_promoting_to_production_archives_the_previous_production_first():
    plan = plan_stage_change(v("churn-v3", 3, "Staging"), "Production",
                             [v("churn-v1", 1, "Archived"), v("churn-v2", 2, "Production"), v("churn-v3", 3, "Staging")],
                             ALICE)
    ordered = plan.ordered()
    assert [(c.name, c.previous, c.stage) for c in ordered] == [
        ("churn-v2", "Production", "Archived"), ("churn-v3", "Staging", "Production")]
    assert ordered[0].reason == "replaced in Production by churn-v3: better recall"
    assert ordered[1].by == "alice@example.com"


def test_promoting_repairs_a_model_that_somehow_had_two_production_versions():
    plan = plan_stage_change(v("churn-v4", 4, "Candidate"), "Production",
                             [v("churn-v2", 2, "Production"), v("churn-v3", 3, "Production")], ALICE)
    assert [c.name for c in plan.archives] == ["churn-v2", "churn-v3"]


def test_other_models_production_versions_are_left_alone():
    plan = plan_stage_change(v("churn-v2", 2, "Candidate"), "Production",
                             [v("fraud-v1", 1, "Production", model="fraud")], ALICE)
    assert [c.name for c in plan.changes] == ["churn-v2"]


def test_moving_to_staging_archives_nothing():
    plan = plan_stage_change(v("churn-v2", 2, "Candidate"), "Staging", [v("churn-v1", 1, "Production")], ALICE)
    assert [(c.name, c.stage) for c in plan.changes] == [("churn-v2", "Staging")]


def test_staying_in_the_same_stage_changes_nothing():
    assert plan_stage_change(v("churn-v2", 2, "Staging"), "Staging", [], ALICE).changes == ()


@pytest.mark.parametrize("previous, stage", [("Production", "Candidate")])
def test_a_forbidden_transition_is_refused_with_the_allowed_ones(previous, stage):
    with pytest.raises(TransitionError, match="cannot move to Candidate .allowed: Archived, Staging"):
        plan_stage_change(v("churn-v2", 2, previous), stage, [], ALICE)


def test_an_archived_version_can_come_back_to_production_as_a_rollback():
    plan = plan_stage_change(v("churn-v1", 1, "Archived"), "Production", [v("churn-v2", 2, "Production")], ALICE)
    assert [(c.name, c.stage) for c in plan.ordered()] == [("churn-v2", "Archived"), ("churn-v1", "Production")]


def test_an_unknown_stage_is_refused():
    with pytest.raises(TransitionError, match="unknown stage 'Live'"):
        plan_stage_change(v("churn-v2", 2, "Candidate"), "Live", [], ALICE)


def test_who_and_why_come_from_the_annotations_or_the_policy():
    annotations = {registry.CHANGED_BY_ANNOTATION: "bob", registry.REASON_ANNOTATION: "approved in review"}
    assert registry.actor_from_annotations(annotations, "policy/auto") == Actor("bob", "approved in review")
    assert registry.actor_from_annotations({}, "policy/auto", "beats production") == Actor(
        "policy/auto", "beats production")


def test_history_keeps_the_newest_entries_oldest_first():
    history = []
    for i in range(5):
        change = registry.StageChange("m-v1", "Candidate", "Staging", "bob", f"r{i}")
        history = registry.append_history(history, registry.history_entry(change, f"t{i}"), limit=3)
    assert [h.reason for h in history] == ["r2", "r3", "r4"]


def test_production_conflicts_are_found_per_model():
    versions = [v("a-v1", 1, "Production", "a"), v("a-v2", 2, "Production", "a"), v("b-v1", 1, "Production", "b")]
    assert registry.production_conflicts(versions) == {"a": ["a-v1", "a-v2"]}


def test_artifact_verification_compares_the_stored_bytes_with_the_spec():
    data = b"model bytes"
    good = registry.verify_artifact(data, artifacts.sha256_hex(data))
    bad = registry.verify_artifact(data + b"!", artifacts.sha256_hex(data))
    assert good.ok and good.reason == "ArtifactVerified"
    assert not bad.ok and bad.reason == "ArtifactChecksumMismatch" and artifacts.sha256_hex(data) in bad.message


# ---- skops artifacts


def _fitted(name: str, task: str, params: dict, metric: str = "f1", n_classes: int = 2):
    from sklearn.datasets import make_classification, make_regression

    if task == "classification":
        X, y = make_classification(n_samples=80, n_features=5, n_informative=3, n_classes=n_classes,
                                   random_state=0)
    else:
        X, y = make_regression(n_samples=80, n_features=5, random_state=0)
    model = fam.build_estimator(name, task, params, metric=metric, seed=0, scale=True, n_classes=n_classes)
    return model.fit(X, y), X


@pytest.mark.parametrize("name", sorted(fam.FAMILIES))
def test_every_family_at_every_corner_of_a_small_grid_round_trips_through_the_trusted_loader(name):
    for task in fam.family(name).tasks:
        for params in grid(fam.resolve_space(name, task), 4):
            # Small ensembles: the types inside do not depend on their size.
            if name in ("random_forest", "extra_trees", "gradient_boosting"):
                params = {**params, "n_estimators": 3}
            if name == "hist_gradient_boosting":
                params = {**params, "max_iter": 3}
            for metric, n_classes in ((("f1", 2), ("log_loss", 3)) if task == "classification" else (("r2", 0),)):
                if metric in fam.family(name).unsupported_metrics(task, n_classes):
                    continue
                model, X = _fitted(name, task, params, metric, max(n_classes, 2))
                data = artifacts.dumps(model)
                loaded = artifacts.loads(data, expected_sha256=artifacts.sha256_hex(data))
                np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_equal_models_serialize_to_equal_bytes():
    first, _ = _fitted("random_forest", "classification", {"n_estimators": 4})
    second, _ = _fitted("random_forest", "classification", {"n_estimators": 4})
    assert artifacts.dumps(first) == artifacts.dumps(second)


def test_a_tampered_artifact_is_refused_by_its_checksum():
    model, _ = _fitted("logistic_regression", "classification", {})
    data = artifacts.dumps(model)
    with pytest.raises(artifacts.ArtifactIntegrityError, match="does not match"):
        artifacts.loads(data[:-1] + bytes([data[-1] ^ 1]), expected_sha256=artifacts.sha256_hex(data))


def _with_schema(data: bytes, edit) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for name in source.namelist():
            content = source.read(name)
            if name == "schema.json":
                content = json.dumps(edit(json.loads(content))).encode()
            target.writestr(name, content)
    return out.getvalue()


class Sneaky:
    """A class no allow-list names."""


def _renamed(node, old: tuple[str, str], new: tuple[str, str]):
    if isinstance(node, dict):
        if (node.get("__module__"), node.get("__class__")) == old:
            node = {**node, "__module__": new[0], "__class__": new[1]}
        return {k: _renamed(v, old, new) for k, v in node.items()}
    if isinstance(node, list):
        return [_renamed(x, old, new) for x in node]
    return node


def test_an_artifact_holding_an_unknown_class_is_refused():
    from sklearn.dummy import DummyClassifier

    model = DummyClassifier(constant=Sneaky())
    with pytest.raises(artifacts.UntrustedArtifact, match="test_registry_and_artifacts.Sneaky"):
        artifacts.loads(artifacts.dumps(model))


def test_an_artifact_edited_to_build_a_subprocess_is_refused_before_anything_is_built():
    from sklearn.dummy import DummyClassifier

    data = artifacts.dumps(DummyClassifier(constant=Sneaky()))
    tampered = _with_schema(data, lambda schema: _renamed(schema, (Sneaky.__module__, "Sneaky"),
                                                          ("subprocess", "Popen")))
    with pytest.raises(artifacts.UntrustedArtifact, match="subprocess.Popen"):
        artifacts.loads(tampered)


def test_an_artifact_carrying_a_function_is_refused():
    from sklearn.preprocessing import FunctionTransformer
    import skops.io as sio

    data = sio.dumps(FunctionTransformer(func=eval))
    with pytest.raises(artifacts.UntrustedArtifact, match="eval"):
        artifacts.loads(data)


def test_bytes_that_are_no_skops_file_are_refused_clearly():
    with pytest.raises(artifacts.UntrustedArtifact, match="not a readable skops artifact"):
        artifacts.loads(b"\x80\x04 definitely a pickle")


def test_kadence_s_featureset_transformer_is_trusted_by_exact_name():
    assert "kadence.domain.data.transforms.FeatureTransformer" in artifacts.trusted_types()
