"""The workload image is the Ray image (issue 18): it locks the `ray` extra, and the KubeRay
example runs it, at the Ray version it pins, as head and workers."""

from __future__ import annotations

import yaml

from kadence.images import WORKLOAD_REPOSITORY

from .test_supply_chain import LOCKS, REPO, pins

EXAMPLE = REPO / "examples" / "ray" / "00-raycluster.yaml"


def test_the_kuberay_example_runs_the_workload_image_at_the_ray_version_it_locks():
    ray_version = pins(LOCKS["workloads"][0])["ray"][0]
    cluster = next(d for d in yaml.safe_load_all(EXAMPLE.read_text()) if d and d.get("kind") == "RayCluster")
    assert cluster["spec"]["rayVersion"] == ray_version
    groups = [cluster["spec"]["headGroupSpec"], *cluster["spec"]["workerGroupSpecs"]]
    images = {c["image"] for g in groups for c in g["template"]["spec"]["containers"]}
    assert len(images) == 1 and images.pop().split("/")[-1].split(":")[0] == WORKLOAD_REPOSITORY
