"""The function side: the handler module minifaas imports in every instance of a daydream
function. The import is the instance's init: it loads the workflow's runtime environment
once; `handle` then runs one component per request, by name, from a signed payload."""

from __future__ import annotations

import json
import os
from typing import Any

from daydream_core.model import Tier
from daydream_core.runtime import FunctionRuntime
from daydream_core.workflow import RuntimeEnvironment

_spec = json.loads(os.environ["DAYDREAM_RUNTIME"])
runtime = FunctionRuntime(
    RuntimeEnvironment(
        _spec["name"], _spec["module"], tuple(_spec["preload"]), tuple(_spec["requirements"])
    ),
    Tier(**json.loads(os.environ["DAYDREAM_TIER"])),
    threads=len(os.sched_getaffinity(0)),
    store_uri=os.environ["DAYDREAM_STORE"],
    key=os.environ.pop("DAYDREAM_PAYLOAD_KEY"),  # components never see it
)


def handle(event: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    """minifaas's context (instance id, memory, vCPUs) is what the component sees as
    `ctx.platform`; the answer is the runtime's envelope, never an exception."""
    return runtime.handle(event, platform=context)
