"""Dataset handlers."""

from ..api.kinds import BY_KIND
from .common import register_spec_validation

KIND = BY_KIND["Dataset"]

register_spec_validation(KIND)
