"""InferenceService handlers."""

from ..api.kinds import BY_KIND
from .common import register_spec_validation

KIND = BY_KIND["InferenceService"]

register_spec_validation(KIND)
