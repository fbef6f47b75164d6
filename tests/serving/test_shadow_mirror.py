"""Shadow traffic without a gateway: the stable server copies each request to the shadow;
the caller gets stable's answer only, and the shadow's answers are logged under its version."""

from __future__ import annotations

import uuid

import httpx

from .conftest import Server, _save, churn_frame, churn_pipeline, churn_task, s3_env, upload
from .test_logging_and_feedback import ROWS, read_predictions, wait_for


def test_the_shadow_gets_a_copy_and_only_stable_answers(churn_model, store, s3_settings, tmp_path):
    frame, labels = churn_frame(600, seed=1)
    contrarian = _save(churn_pipeline(frame, 1 - labels), churn_model.holdout, tmp_path, "contrarian", compile_it=False)
    isvc = f"churn-mirror-{uuid.uuid4().hex[:6]}"
    shadow_task = churn_task(churn_model, store, compiled=False, isvc=isvc)
    shadow_task.update(version=5, role="shadow",
                       artifact={"uri": upload(store, contrarian.skops_path, f"models/{isvc}/contrarian.skops"),
                                 "sha256": contrarian.sha256})
    shadow = Server(shadow_task, tmp_path, env=s3_env(s3_settings)).wait_ready()
    stable_task = churn_task(churn_model, store, compiled=True, isvc=isvc)
    stable_task["mirrorTo"] = shadow.url
    stable = Server(stable_task, tmp_path, env=s3_env(s3_settings)).wait_ready()
    try:
        ids = [f"{isvc}-{i}" for i in range(len(ROWS))]
        with httpx.Client(base_url=stable.url, timeout=30) as http:
            answers = [http.post("/v1/models/churn:predict", json={"instances": [row]},
                                 headers={"X-Request-Id": rid}).json()["predictions"][0] for rid, row in zip(ids, ROWS)]
        import pandas as pd

        frame_rows = pd.DataFrame(ROWS).astype({"age": float})
        assert answers == churn_model.pipeline.predict(frame_rows).tolist()
        shadow_says = contrarian.pipeline.predict(frame_rows).tolist()
        assert shadow_says != answers  # the contrarian really disagrees, so the check below means something
        records = wait_for(lambda: (r := [x for x in read_predictions(store, "tests", isvc) if x.model_version == "5"])
                           and len(r) == len(ids) and r)
        assert {r.request_id: r.outputs.prediction for r in records} == dict(zip(ids, shadow_says))
        stable_records = wait_for(lambda: (r := [x for x in read_predictions(store, "tests", isvc)
                                                 if x.model_version == "3"]) and len(r) == len(ids) and r)
        assert {r.request_id: r.outputs.prediction for r in stable_records} == dict(zip(ids, answers))
        assert 'kadence_serving_mirrored_requests_total{model="churn",outcome="sent",version="3"} 3.0' in \
            stable.metrics()
    finally:
        assert stable.stop() == 0
        assert shadow.stop() == 0
