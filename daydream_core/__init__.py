"""daydream: dynamic scientific workflows on serverless platforms, with hot starts."""

from daydream_core.model import Call, StartKind, Tier, WidthHint
from daydream_core.workflow import ComponentContext, Phase, Preset, RunContext, Workflow

__all__ = [
    "Call",
    "ComponentContext",
    "Phase",
    "Preset",
    "RunContext",
    "StartKind",
    "Tier",
    "WidthHint",
    "Workflow",
]
__version__ = "0.1.0"
