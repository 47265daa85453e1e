"""What the adapter, the handler and the fake agree on: variable names, labels, limits."""

from __future__ import annotations

ENTRY_POINT = "daydream"  # the function in the source's main.py that Cloud Functions calls
RUNTIME_VAR = "DAYDREAM_RUNTIME"  # the runtime environment, as JSON
TIER_VAR = "DAYDREAM_TIER"  # the tier, as JSON
STORE_VAR = "DAYDREAM_STORE"  # the provider's object store URI (oversized payloads, results)
THREADS_VAR = "DAYDREAM_THREADS"
KEY_VAR = "DAYDREAM_PAYLOAD_KEY"  # the per-deployment payload key (`daydream_core.auth`)
RESERVED = "__daydream__"  # the payload key carrying options for the handler itself
OPT_PAYLOAD_KEY = "payload_key"  # the payload was too large: read it from the store here
RESULT_KEY = "__daydream_result__"  # the result was too large: it is in the store here

# Labels on every function and bucket daydream creates: cleanup finds them by these.
LABEL_MANAGED = "daydream-managed"
LABEL_RUNTIME = "daydream-runtime"
LABEL_TIER = "daydream-tier"
LABEL_DEPLOYMENT = "daydream-deployment"  # the deployment (one `daydream run`) that made it

# Cloud Run's request size limit for HTTP/1 is 32 MiB; leave room for the headers and the
# envelope around a payload.
MAX_REQUEST_BYTES = 32 * 1024 * 1024
MAX_INLINE_BYTES = MAX_REQUEST_BYTES - 64 * 1024

# The metadata server every Cloud Run instance reaches (google-auth honours the override).
METADATA_HOST_VAR = "GCE_METADATA_HOST"
METADATA_HOST = "metadata.google.internal"
INSTANCE_ID_PATH = "/computeMetadata/v1/instance/id"
