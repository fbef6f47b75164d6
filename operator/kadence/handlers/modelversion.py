"""ModelVersion handlers."""

from ..api.kinds import BY_KIND
from .common import register_spec_validation

KIND = BY_KIND["ModelVersion"]

register_spec_validation(KIND)
