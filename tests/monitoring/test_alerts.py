from kadence.domain.monitoring.alerts import alert_payload, webhook_headers

RESULT = {"time": "2026-11-23T12:00:00Z", "breached": True, "reason": "QualityBelowThreshold",
          "message": "f1=0.5 < 0.55 over 200 labelled predictions", "samples": 500, "labelledSamples": 200,
          "metrics": {"f1": 0.5}, "driftedFeatures": ["x"], "reportUri": "s3://kadence/monitoring/r.html"}


def test_a_breach_alert_says_what_breached_and_what_kadence_did_about_it():
    payload = alert_payload(namespace="ns", policy="churn-monitor", inference_service="churn", result=RESULT,
                            retrain_decision={"reason": "RetrainAllowed", "message": "retrain for breach",
                                              "trigger": "breach"}, training_run="churn-monitor-retrain-1")
    assert payload["kind"] == "kadence.dev/alert" and payload["policy"] == {"namespace": "ns", "name": "churn-monitor"}
    assert payload["reason"] == "QualityBelowThreshold" and payload["metrics"] == {"f1": 0.5}
    assert payload["retrain"] == {"decision": "RetrainAllowed", "message": "retrain for breach", "trigger": "breach",
                                  "trainingRun": "churn-monitor-retrain-1"}


def test_an_alert_without_a_retrain_decision_has_no_retrain_part():
    assert "retrain" not in alert_payload(namespace="ns", policy="p", inference_service="s", result=RESULT)


def test_the_secret_token_is_sent_as_a_bearer_token_and_omitted_without_one():
    assert webhook_headers("s3cret\n")["Authorization"] == "Bearer s3cret"
    assert "Authorization" not in webhook_headers(None)
