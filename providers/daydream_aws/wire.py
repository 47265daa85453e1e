"""What the adapter and the function-side handler agree on (no imports beyond the stdlib).

The adapter adds one reserved key to a component's payload, `RESERVED`, holding invocation
options (the timeout, where oversized payloads and results go). The handler answers with the
core's envelope plus the instance's measured identity: its execution-environment id, whether
this invocation ran its init, and the start kind it observed.
"""

from __future__ import annotations

# Lambda's synchronous invocation limit, for the request and for the response (6 MB).
MAX_SYNC_PAYLOAD_BYTES = 6 * 1024 * 1024

HANDLER = "daydream_aws.handler.handler"

# Environment variables of every deployed function.
RUNTIME_VAR = "DAYDREAM_RUNTIME"  # the RuntimeEnvironment, as JSON
TIER_VAR = "DAYDREAM_TIER"  # the Tier, as JSON
STORE_VAR = "DAYDREAM_STORE"  # the provider's object store URI (for oversized transfers)
THREADS_VAR = "DAYDREAM_THREADS"
# The function's payload key (per deployment, kept in its configuration): every payload is
# signed with it (`daydream_core.auth`), so only the adapter that deployed it can invoke it.
KEY_VAR = "DAYDREAM_PAYLOAD_KEY"

RESERVED = "__daydream__"  # the adapter's invocation options inside a payload
OPT_TIMEOUT = "timeout_s"  # the component's time limit, enforced inside the instance
OPT_TRANSFER = "transfer"  # store URI for oversized payloads and results
OPT_PAYLOAD_KEY = "payload_key"  # the payload itself is in the transfer store, under this key

# Keys of a result envelope that the handler put in the transfer store instead.
RESULT_KEY = "result_key"

# Unhandled errors the handler raises on purpose; Lambda reports them as FunctionError with
# `errorType` = the exception class name and `errorMessage` = its text.
COMPONENT_ERROR = "DaydreamComponentError"  # errorMessage is the failed envelope, as JSON
TIMEOUT_ERROR = "DaydreamTimeout"

# Tags on every function daydream creates (layers carry DESCRIPTION_MARK instead: they have no
# tags); cleanup removes only what carries them.
TAG_MANAGED = "daydream:managed"
TAG_RUNTIME = "daydream:runtime"
TAG_TIER = "daydream:tier"
# The deployment (one `daydream run`) that created a function; layer versions carry it in
# their description, after DEPLOYMENT_MARK.
TAG_DEPLOYMENT = "daydream:deployment"
DEPLOYMENT_MARK = " deployment="
DESCRIPTION_MARK = "daydream runtime environment"
