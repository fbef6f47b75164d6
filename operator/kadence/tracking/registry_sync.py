"""`kadence mlflow-sync`'s work: the ModelVersion in MLflow's model registry, its stage as an alias.

Idempotent: the MLflow model version is found by its run (one ModelVersion per TrainingRun run),
created only when missing; aliases are set or deleted only where they differ (`alias_changes`).
"""

from __future__ import annotations

from typing import Callable

from .model import (
    ALIASES,
    TAG_MODEL_VERSION,
    AliasSyncTask,
    alias_changes,
    owner_tags,
)


def sync(task: AliasSyncTask, log: Callable[[str], None] = print) -> dict:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri=task.tracking_uri, registry_uri=task.tracking_uri)
    try:
        client.get_registered_model(task.model)
    except MlflowException as error:
        if error.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        client.create_registered_model(task.model, tags={"kadence.namespace": task.namespace})
    found = client.search_model_versions(f"name = '{task.model}' and run_id = '{task.run_id}'")
    if found:
        mlflow_version = found[0]
    else:
        import mlflow

        mlflow.set_tracking_uri(task.tracking_uri)
        mlflow.set_registry_uri(task.tracking_uri)
        # register_model resolves runs:/<run>/model to the run's logged model (MLflow 3's model id)
        mlflow_version = mlflow.register_model(
            f"runs:/{task.run_id}/model", task.model,
            tags={**owner_tags(task.namespace, "ModelVersion", task.model_version, task.model_version_uid),
                  TAG_MODEL_VERSION: task.model_version, "kadence.version": str(task.version)})
        log(f"mlflow-sync: registered {task.model_version} as {task.model} version {mlflow_version.version}")
    client.set_model_version_tag(task.model, mlflow_version.version, "kadence.stage", task.stage)
    model = client.get_registered_model(task.model)
    current = {alias: str(version) for alias, version in (model.aliases or {}).items() if alias in ALIASES.values()}
    to_set, to_delete = alias_changes(task.stage, str(mlflow_version.version), current, task.release_aliases)
    for alias, version in to_set.items():
        client.set_registered_model_alias(task.model, alias, version)
    for alias in to_delete:
        # Only aliases no other version claims are released (a successor's Job moves the rest); read
        # again anyway, as a user may promote another version while this Job runs.
        now = {a: str(v) for a, v in (client.get_registered_model(task.model).aliases or {}).items()}
        if now.get(alias) == str(mlflow_version.version):
            client.delete_registered_model_alias(task.model, alias)
    outcome = {"model": task.model, "version": str(mlflow_version.version), "stage": task.stage,
               "set": sorted(to_set), "deleted": to_delete}
    log(f"mlflow-sync: {task.model} version {mlflow_version.version} ({task.model_version}) in stage {task.stage}: "
        f"aliases set {sorted(to_set) or 'none'}, deleted {to_delete or 'none'}")
    return outcome
