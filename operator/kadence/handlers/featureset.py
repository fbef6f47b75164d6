"""FeatureSet handlers."""

from ..api.kinds import BY_KIND
from .common import register_spec_validation

KIND = BY_KIND["FeatureSet"]

register_spec_validation(KIND)
