"""TrainingRun handlers."""

from ..api.kinds import BY_KIND
from .common import register_spec_validation

KIND = BY_KIND["TrainingRun"]

register_spec_validation(KIND)
