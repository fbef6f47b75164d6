"""The Argo CD health check, run by a Lua 5.1 interpreter (Argo CD's gopher-lua speaks 5.1)
against status samples of every kind."""

from __future__ import annotations

import typing

import pytest
import yaml
from lupa import lua51

from kadence.api.inferenceservice import RolloutPhase
from kadence.api.kinds import KINDS

from .helm import CHART, REPO, objects, render

SCRIPT = (CHART / "argocd" / "health" / "kadence.lua").read_text()
KIND_NAMES = [kind.kind for kind in KINDS]


def health(obj: dict) -> tuple[str, str]:
    runtime = lua51.LuaRuntime(unpack_returned_tuples=True)

    def to_lua(value):
        if isinstance(value, dict):
            return runtime.table_from({k: to_lua(v) for k, v in value.items()})
        if isinstance(value, list):
            return runtime.table_from([to_lua(v) for v in value])
        return value

    runtime.globals()["obj"] = to_lua(obj)
    result = runtime.execute(SCRIPT)
    return result["status"], result["message"]


def sample(kind: str, ready: str | None = None, phase: str | None = None, reason: str = "Reconciled",
           message: str = "", generation: int = 3, observed: int | None = 3) -> dict:
    status: dict = {}
    if observed is not None:
        status["observedGeneration"] = observed
    if phase is not None:
        status["phase"] = phase
    if ready is not None:
        status["conditions"] = [
            {"type": "Progressing", "status": "True", "reason": "Working", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"},
            {"type": "Ready", "status": ready, "reason": reason, "message": message, "lastTransitionTime": "2026-01-01T00:00:00Z"},
        ]
    return {"apiVersion": "kadence.dev/v1alpha1", "kind": kind,
            "metadata": {"name": "churn", "namespace": "ml", "generation": generation}, "status": status}


@pytest.mark.parametrize("kind", KIND_NAMES)
@pytest.mark.parametrize("ready,phase,expected", [
    ("True", None, "Healthy"),
    ("True", "Stable", "Healthy"),
    ("True", "Succeeded", "Healthy"),
    ("False", None, "Degraded"),
    ("False", "Invalid", "Degraded"),
    ("False", "Failed", "Degraded"),
    ("False", "Running", "Progressing"),
    ("False", "Training", "Progressing"),
    ("False", "Progressing", "Progressing"),
    ("False", "Paused", "Suspended"),
    ("Unknown", "AwaitingApproval", "Suspended"),
    ("Unknown", None, "Progressing"),
    ("Unknown", "Accepted", "Progressing"),
    ("Unknown", "RolledBack", "Degraded"),
    (None, "Pending", "Progressing"),
    (None, "Degraded", "Degraded"),
])
def test_each_kind_maps_ready_and_phase_to_argo_cd_health(kind, ready, phase, expected):
    assert health(sample(kind, ready, phase))[0] == expected


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_an_object_without_status_or_with_a_stale_one_is_progressing(kind):
    no_status = sample(kind)
    del no_status["status"]
    assert health(no_status) == ("Progressing", "Waiting for the Kadence operator to report status")
    stale = sample(kind, "True", generation=4, observed=3)
    assert health(stale) == ("Progressing", "Waiting for the Kadence operator to observe generation 4")
    never_observed = sample(kind, "False", "Failed", observed=None)
    assert health(never_observed)[0] == "Progressing"


def test_the_message_is_the_ready_condition_message_then_its_reason():
    assert health(sample("Dataset", "False", "Invalid", reason="InvalidSpec",
                         message="spec.schema[0].type: unknown type"))[1] == "spec.schema[0].type: unknown type"
    assert health(sample("TrainingRun", "False", "Failed", reason="JobFailed"))[1] == "JobFailed"


def test_every_rollout_phase_of_the_api_has_a_deliberate_health():
    expected = {"Stable": "Healthy", "Progressing": "Progressing", "Promoting": "Progressing",
                "Paused": "Suspended", "RolledBack": "Degraded", "Degraded": "Degraded"}
    assert set(typing.get_args(RolloutPhase)) == set(expected), "a new phase needs a decision here and in the Lua"
    for phase, status in expected.items():
        ready = "True" if status == "Healthy" else "False"
        assert health(sample("InferenceService", ready, phase))[0] == status, phase


def test_the_argocd_cm_snippet_registers_the_same_script_for_every_kind():
    config = yaml.safe_load((CHART / "argocd" / "argocd-cm.yaml").read_text())
    keys = {f"resource.customizations.health.kadence.dev_{kind}" for kind in KIND_NAMES}
    assert set(config["data"]) == keys
    for key in keys:
        assert config["data"][key] == SCRIPT


def test_the_example_application_installs_this_chart_with_self_heal():
    application = yaml.safe_load((REPO / "examples" / "argocd" / "application.yaml").read_text())
    assert application["kind"] == "Application"
    assert application["spec"]["source"]["path"] == "charts/kadence"
    assert application["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}


def test_the_example_applications_values_pass_the_chart_schema_and_render():
    application = yaml.safe_load((REPO / "examples" / "argocd" / "application.yaml").read_text())
    values = application["spec"]["source"]["helm"]["valuesObject"]
    rendered = objects(render(values))
    deployment = next(o for o in rendered if o["kind"] == "Deployment")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--namespace=ml-team-a" in args


@pytest.mark.parametrize("ready, phase, expected", [
    ("False", "Erasing", "Progressing"),  # its Job is still erasing: not a failure yet
    ("True", "Erased", "Healthy"),
    ("False", "Failed", "Degraded"),
])
def test_an_erasure_request_is_progressing_while_it_erases_and_degraded_when_it_failed(ready, phase, expected):
    assert health(sample("ErasureRequest", ready, phase))[0] == expected
