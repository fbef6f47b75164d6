"""MonitorPolicy handlers."""

from ..api.kinds import BY_KIND
from .common import register_spec_validation

KIND = BY_KIND["MonitorPolicy"]

register_spec_validation(KIND)
