"""The console's calls to the cluster besides its watches: who the user is, whether the user may
make a change (SelfSubjectAccessReview), the change itself, its Event, and each namespace's
object store (its own `kadence-tenant-storage` identity, read with the user's credentials)."""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass

from ..api.common import GROUP, VERSION
from ..storage import TENANT_SECRET, ObjectStore, StorageConfig, StorageError
from . import views

STORE_CACHE_SECONDS = 60.0


@dataclass
class Review:
    allowed: bool
    reason: str


class Cluster:
    def __init__(self, api_client, kubeconfig_user: str | None, s3_endpoint: str | None = None):
        from kubernetes import client

        self.custom = client.CustomObjectsApi(api_client)
        self.core = client.CoreV1Api(api_client)
        self.authorization = client.AuthorizationV1Api(api_client)
        self.api_client = api_client
        self.kubeconfig_user = kubeconfig_user
        self.s3_endpoint = s3_endpoint
        self._stores: dict[str, tuple[float, ObjectStore]] = {}

    def user(self) -> str:
        """The user as the API server knows it (SelfSubjectReview), else the kubeconfig's user name."""
        from kubernetes import client

        try:
            review = client.AuthenticationV1Api(self.api_client).create_self_subject_review(
                {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
            if review.status and review.status.user_info and review.status.user_info.username:
                return review.status.user_info.username
        except Exception:  # noqa: BLE001 - servers before 1.28, or without the API (the sandbox)
            pass
        return self.kubeconfig_user or "unknown user"

    def review(self, namespace: str, kind: str, name: str) -> Review:
        body = views.access_review(namespace, kind, name)
        result = self.authorization.create_self_subject_access_review(body)
        status = result.status
        reason = status.reason or status.evaluation_error or ""
        return Review(bool(status.allowed), reason)

    def patch(self, namespace: str, kind: str, name: str, patch: dict) -> dict:
        return self.custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, views.PLURALS[kind], name, patch)

    def record_event(self, namespace: str, event: dict) -> None:
        self.core.create_namespaced_event(namespace, event)

    def store(self, namespace: str) -> ObjectStore:
        cached = self._stores.get(namespace)
        if cached and time.monotonic() - cached[0] < STORE_CACHE_SECONDS:
            return cached[1]
        try:
            secret = self.core.read_namespaced_secret(TENANT_SECRET, namespace)
        except Exception as error:  # noqa: BLE001
            status = getattr(error, "status", None)
            why = ("does not exist yet (the operator writes it)" if status == 404 else
                   "cannot be read with your credentials" if status == 403 else str(error).splitlines()[0])
            raise StorageError(f"the Secret {namespace}/{TENANT_SECRET} {why}") from error
        data = {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}
        config = StorageConfig(endpoint=self.s3_endpoint or data["endpoint"], access_key=data["accessKey"],
                               secret_key=data["secretKey"], bucket=data.get("bucket", "kadence"),
                               secure=data.get("secure") == "true")
        import urllib3

        store = ObjectStore(config, http_client=urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=5, read=30), retries=urllib3.Retry(total=2, backoff_factor=0.2)))
        self._stores[namespace] = (time.monotonic(), store)
        return store
