"""daydream: dynamic scientific workflows on serverless platforms, with hot starts."""

from daydream_core.model import Call, StartKind, Tier
from daydream_core.workflow import ComponentContext, Preset, RunContext, Workflow

__all__ = ["Call", "ComponentContext", "Preset", "RunContext", "StartKind", "Tier", "Workflow"]
__version__ = "0.1.0"
