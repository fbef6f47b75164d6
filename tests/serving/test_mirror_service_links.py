"""The shadow URL a server mirrors to goes through the Service's link variables when the
pod has them (the sandbox has no cluster DNS; on a cluster they lead where DNS does)."""

from __future__ import annotations

import pytest

from kadence.serving.mirror import service_link_url

LINKS = {"CHURN_SHADOW_SERVICE_HOST": "127.0.0.1", "CHURN_SHADOW_SERVICE_PORT": "43117"}


@pytest.mark.parametrize("url, env, expected", [
    ("http://churn-shadow.shop.svc.cluster.local", LINKS, "http://127.0.0.1:43117"),
    ("http://churn-shadow.shop.svc", LINKS, "http://127.0.0.1:43117"),
    ("http://churn-shadow.shop.svc.cluster.local/v2", LINKS, "http://127.0.0.1:43117/v2"),
    ("http://churn-shadow.shop.svc.cluster.local", {}, "http://churn-shadow.shop.svc.cluster.local"),
    ("http://churn-shadow.shop.svc.cluster.local", {"CHURN_SHADOW_SERVICE_HOST": "10.0.0.9"},
     "http://churn-shadow.shop.svc.cluster.local"),
    ("http://127.0.0.1:9000", LINKS, "http://127.0.0.1:9000"),
    ("http://shadow.example.com", {"SHADOW_SERVICE_HOST": "1.2.3.4", "SHADOW_SERVICE_PORT": "80"},
     "http://shadow.example.com"),
])
def test_a_service_url_is_resolved_through_its_link_variables_only_when_both_exist(url, env, expected):
    assert service_link_url(url, env) == expected
