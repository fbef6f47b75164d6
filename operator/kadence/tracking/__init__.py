"""Experiment tracking in MLflow, done by workload Jobs only (the operator never talks to MLflow).

- `model`: the typed contract (where to log, what came of it), the tags that point back to the
  Kubernetes objects, the stage-to-alias mapping and the conditions: pure;
- `mlflow_log`: the training Job's logging of a finished search (one run, a child run per trial);
- `registry_sync`: `kadence mlflow-sync`, the small Job that registers a ModelVersion in MLflow's
  model registry and mirrors its stage as an alias.
"""
