"""The operator's own Prometheus metrics, served on KADENCE_METRICS_PORT.

| name | type | labels |
|---|---|---|
| kadence_operator_reconcile_errors_total | counter | kind, namespace, reason |
| kadence_canary_rollbacks_total | counter | namespace, inferenceservice |

The MonitorPolicy metrics (`kadence.domain.monitoring.metrics`) are registered into
the same registry by `monitor_metrics()` the first time the operator needs them.
"""

from __future__ import annotations

import functools

from prometheus_client import REGISTRY, Counter, start_http_server

from .settings import Settings

reconcile_errors = Counter(
    "kadence_operator_reconcile_errors",
    "Reconciliations that ended in an error, by kind and reason (InvalidSpec, or the exception's class).",
    ("kind", "namespace", "reason"),
)

canary_rollbacks = Counter(
    "kadence_canary_rollbacks",
    "Canaries rolled back to the stable version after a failed analysis.",
    ("namespace", "inferenceservice"),
)


@functools.lru_cache(maxsize=1)
def monitor_metrics():
    from .domain.monitoring.metrics import MonitorMetrics

    return MonitorMetrics(REGISTRY)


def serve_from_env(env: dict[str, str] | None = None) -> int | None:
    """Start the /metrics endpoint when KADENCE_METRICS_PORT is set; return the port."""
    settings = Settings.from_env(env)
    if settings.metrics_port is None:
        return None
    start_http_server(settings.metrics_port, addr=settings.metrics_address)
    return settings.metrics_port
