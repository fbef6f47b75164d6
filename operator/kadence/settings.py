"""Every `KADENCE_*` environment variable, read in one place.

`Settings.from_env(env)` parses a mapping (the process environment by default) into one
validated, immutable object; a malformed value fails with the variable's name. Modules take
their values from it (`settings()` for this process, `Settings.from_env(env)` where a module is
handed another process's environment, e.g. a Job's). `tests/test_settings.py` fails when a
module reads a `KADENCE_*` variable itself, or names one this model does not declare.

Who sets them: the Helm chart and `kadence sandbox` (the operator), the operator's Job and
Deployment builders (workloads and model servers: the task, storage credentials, owner stamps).
"""

from __future__ import annotations

import functools
import os
from typing import Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, field_validator

PREFIX = "KADENCE_"
# A Dataset whose s3:// source has its own credentials: the ingest Job gets them as
# KADENCE_SOURCE_S3_ENDPOINT/ACCESS_KEY/SECRET_KEY (planners.dataset), read as a second S3 config.
SOURCE_S3_PREFIX = "KADENCE_SOURCE_S3_"


def _flag(value: object) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    # -- the operator process ----------------------------------------------------------
    namespace: str | None = Field(None, alias="KADENCE_NAMESPACE",
                                  description="The operator's own namespace (the chart sets it): where its leader "
                                              "election Lease lives.")
    resync_seconds: float = Field(600.0, gt=0, alias="KADENCE_RESYNC_SECONDS",
                                  description="Safety-net resync of every object, seconds.")
    reconcile_workers: int = Field(4, ge=1, alias="KADENCE_RECONCILE_WORKERS",
                                   description="Reconciles run at once.")
    lease_duration_seconds: float = Field(15.0, gt=0, alias="KADENCE_LEASE_DURATION_SECONDS",
                                          description="Leader election: a Lease not renewed this long is taken over.")
    lease_renew_deadline_seconds: float = Field(10.0, gt=0, alias="KADENCE_LEASE_RENEW_DEADLINE_SECONDS",
                                                description="Leader election: the holder stops when it could not "
                                                            "renew this long.")
    lease_renew_period_seconds: float = Field(5.0, gt=0, alias="KADENCE_LEASE_RENEW_PERIOD_SECONDS",
                                              description="Leader election: how often the holder renews.")
    lease_retry_period_seconds: float = Field(2.0, gt=0, alias="KADENCE_LEASE_RETRY_PERIOD_SECONDS",
                                              description="Leader election: how often a standby reads the Lease.")
    failpoint: str | None = Field(None, alias="KADENCE_FAILPOINT",
                                  description="Fault injection for crash tests: `exit-after-apply:<Kind>` kills the "
                                              "operator (exit 137) right after it applied a child of that kind, "
                                              "before it writes the owner's status.")
    metrics_port: int | None = Field(None, ge=1, le=65535, alias="KADENCE_METRICS_PORT",
                                     description="Serve /metrics on this port when set.")
    metrics_address: str = Field("0.0.0.0", alias="KADENCE_METRICS_ADDRESS")
    workload_image: str | None = Field(None, alias="KADENCE_WORKLOAD_IMAGE",
                                       description="Image of the Jobs and model servers (the package's own default "
                                                   "when unset).")
    workload_service_account: str | None = Field(None, alias="KADENCE_WORKLOAD_SERVICE_ACCOUNT")
    workload_image_pull_policy: str | None = Field(None, alias="KADENCE_WORKLOAD_IMAGE_PULL_POLICY")
    workload_image_pull_secrets: tuple[str, ...] = Field((), alias="KADENCE_WORKLOAD_IMAGE_PULL_SECRETS",
                                                         description="Comma-separated Secret names.")
    tenancy: Literal["shared", "minio", "seaweedfs"] = Field("shared", alias="KADENCE_TENANCY",
                                                             description="Storage credentials per namespace.")
    seaweedfs_master: str | None = Field(None, alias="KADENCE_SEAWEEDFS_MASTER")
    seaweedfs_filer: str | None = Field(None, alias="KADENCE_SEAWEEDFS_FILER")
    weed: str | None = Field(None, alias="KADENCE_WEED", description="Path of SeaweedFS's weed binary.")
    sandbox: bool = Field(False, alias="KADENCE_SANDBOX",
                          description="Running against the local sandbox: file:// sources are allowed.")
    sandbox_dir: str | None = Field(None, alias="KADENCE_SANDBOX_DIR")
    mlflow_tracking_uri: str | None = Field(None, alias="KADENCE_MLFLOW_TRACKING_URI",
                                            description="MLflow tracking server the training and registry-sync Jobs "
                                                        "log to (the chart's `mlflow.trackingUri`); unset: no "
                                                        "tracking.")
    engine: Literal["local", "ray"] = Field("local", alias="KADENCE_ENGINE",
                                            description="The engine of a Dataset, TrainingRun… whose spec.engine is "
                                                        "unset (operator-wide default; the chart's `engine`; also "
                                                        "passed to every workload Job).")
    ray_address: str | None = Field(None, alias="KADENCE_RAY_ADDRESS",
                                    description="The Ray cluster `engine: ray` workloads submit to (host:port of a "
                                                "head's GCS, or ray://host:10001); passed to every workload Job.")

    # -- object storage (operator, workloads, model servers) ---------------------------
    s3_endpoint: str | None = Field(None, alias="KADENCE_S3_ENDPOINT")
    s3_access_key: str | None = Field(None, alias="KADENCE_S3_ACCESS_KEY")
    s3_secret_key: str | None = Field(None, alias="KADENCE_S3_SECRET_KEY")
    s3_bucket: str = Field("kadence", alias="KADENCE_S3_BUCKET")
    s3_secure: bool = Field(False, alias="KADENCE_S3_SECURE")
    s3_region: str | None = Field(None, alias="KADENCE_S3_REGION")
    source_s3: dict[str, str] = Field(default_factory=dict, description=(
        "The KADENCE_SOURCE_S3_* variables, renamed to their KADENCE_S3_* counterparts."))

    # -- workloads and model servers (set by the operator on each Job/Deployment) -------
    task: str | None = Field(None, alias="KADENCE_TASK", description="The Job's task, JSON.")
    serve_task: str | None = Field(None, alias="KADENCE_SERVE_TASK", description="The model server's task, JSON.")
    image: str | None = Field(None, alias="KADENCE_IMAGE", description="The image a Job runs in (lineage).")
    inline_data: str | None = Field(None, alias="KADENCE_INLINE_DATA",
                                    description="A configMapRef source's data, from the ingest Job's env.")
    pii_key: str | None = Field(None, alias="KADENCE_PII_KEY",
                                description="The namespace's personal-data hashing key (Secret kadence-pii-key).")
    owner_uid: str | None = Field(None, alias="KADENCE_OWNER_UID")
    owner_kind: str | None = Field(None, alias="KADENCE_OWNER_KIND")
    owner_name: str | None = Field(None, alias="KADENCE_OWNER_NAME")
    owner_namespace: str | None = Field(None, alias="KADENCE_OWNER_NAMESPACE")
    http_max_bytes: int | None = Field(None, gt=0, alias="KADENCE_HTTP_MAX_BYTES")
    http_timeout_seconds: float | None = Field(None, gt=0, alias="KADENCE_HTTP_TIMEOUT_SECONDS")
    http_deadline_seconds: float | None = Field(None, gt=0, alias="KADENCE_HTTP_DEADLINE_SECONDS")
    http_allow_redirect_hosts: tuple[str, ...] = Field((), alias="KADENCE_HTTP_ALLOW_REDIRECT_HOSTS")
    bind_address: str = Field("0.0.0.0", alias="KADENCE_BIND_ADDRESS")
    feedback_token: str | None = Field(None, alias="KADENCE_FEEDBACK_TOKEN",
                                       description="Bearer token the model server requires on /feedback.")
    alert_token: str | None = Field(None, alias="KADENCE_ALERT_TOKEN",
                                    description="The alert Job's bearer token (the webhook's Secret key).")

    @field_validator("workload_image_pull_secrets", "http_allow_redirect_hosts", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("s3_secure", "sandbox", mode="before")
    @classmethod
    def _bool(cls, value: object) -> object:
        return _flag(value) if isinstance(value, str) else value

    @field_validator("tenancy", "engine", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        """The settings in `env` (os.environ by default); empty values count as unset."""
        env = os.environ if env is None else env
        values: dict[str, object] = {k: v for k, v in env.items() if k.startswith(PREFIX) and v != ""}
        values["source_s3"] = {"KADENCE_S3_" + k[len(SOURCE_S3_PREFIX):]: v for k, v in env.items()
                               if k.startswith(SOURCE_S3_PREFIX) and v != ""}
        return cls.model_validate(values)

    def value(self, variable: str) -> Any:
        """The parsed value of the variable `variable` (e.g. "KADENCE_OWNER_UID")."""
        return getattr(self, _FIELD_OF[variable])

    def storage_env(self) -> dict[str, str]:
        """The KADENCE_S3_* variables that are set, as a mapping (for StorageConfig.from_env)."""
        names = ("s3_endpoint", "s3_access_key", "s3_secret_key", "s3_bucket", "s3_secure", "s3_region")
        fields = type(self).model_fields
        return {fields[name].alias: str(value).lower() if isinstance(value, bool) else str(value)
                for name in names if (value := getattr(self, name)) is not None}


_FIELD_OF = {field.alias: name for name, field in Settings.model_fields.items() if field.alias}


def declared_variables() -> set[str]:
    """Every variable name the settings read (the KADENCE_SOURCE_S3_* family by its prefix)."""
    return {f.alias for f in Settings.model_fields.values() if f.alias}


@functools.lru_cache(maxsize=1)
def settings() -> Settings:
    """This process's settings, read once."""
    return Settings.from_env()
