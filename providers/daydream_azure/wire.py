"""What the adapter, the function app and the fake agree on (no imports beyond the stdlib)."""

from __future__ import annotations

FUNCTION = "run"  # the function app's one HTTP-triggered function, and its route
ROUTE = f"/api/{FUNCTION}"
KEY_HEADER = "x-functions-key"  # how a function key travels (Azure also accepts ?code=)

# Bodies above this go through Blob storage (Azure's front end takes up to 100 MB, but large
# synchronous bodies are slow and count against the 230 s HTTP response limit).
MAX_INLINE_BYTES = 8 * 1024 * 1024

# App settings of every function app daydream deploys.
RUNTIME_VAR = "DAYDREAM_RUNTIME"  # the RuntimeEnvironment, as JSON
TIER_VAR = "DAYDREAM_TIER"  # the Tier, as JSON
STORE_VAR = "DAYDREAM_STORE"  # the provider's object store URI
THREADS_VAR = "DAYDREAM_THREADS"
KEY_VAR = "DAYDREAM_PAYLOAD_KEY"  # the per-deployment payload key (`daydream_core.auth`)
STORAGE_CONNECTION_VAR = "DAYDREAM_STORAGE_CONNECTION"  # a Blob connection string, if one
PACKAGE_VAR = "DAYDREAM_PACKAGE_SHA256"  # digest of the deployed package, set after deploy

# What the platform tells an instance (Azure's own app settings and environment).
INSTANCE_ID_VAR = "WEBSITE_INSTANCE_ID"
MEMORY_LIMIT_VAR = "WEBSITE_MEMORY_LIMIT_MB"
SKU_VAR = "WEBSITE_SKU"

RESERVED = "__daydream__"  # the adapter's invocation options inside a payload
OPT_PAYLOAD_KEY = "payload_key"  # the payload itself is in the store, under this key
RESULT_KEY = "result_key"  # the result envelope is in the store, under this key

# Tags on every plan and app daydream creates; metadata on every container it creates.
TAG_MANAGED = "daydream-managed"
TAG_RUNTIME = "daydream-runtime"
TAG_TIER = "daydream-tier"
TAG_DEPLOYMENT = "daydream-deployment"  # the deployment (one `daydream run`) that made it
METADATA_MANAGED = "daydream_managed"  # blob metadata names must be C# identifiers
