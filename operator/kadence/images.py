"""The container images Kadence ships, named once for the chart, the sandbox and the Job builders.

Both images are built from `images/` and tagged with the package version, so a chart
release, the operator it installs and the Jobs that operator starts always agree.
"""

from __future__ import annotations

from . import __version__

REGISTRY = "ghcr.io/kadence-dev"
OPERATOR_REPOSITORY = "kadence-operator"
WORKLOAD_REPOSITORY = "kadence-workloads"
TAG = __version__

OPERATOR_IMAGE = f"{REGISTRY}/{OPERATOR_REPOSITORY}:{TAG}"
# Runs every workload command (`kadence ingest|materialize|train|monitor|serve`).
WORKLOAD_IMAGE = f"{REGISTRY}/{WORKLOAD_REPOSITORY}:{TAG}"
