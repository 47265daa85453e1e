"""Google Cloud Functions (2nd gen) for daydream: the adapter, the function-side handler, the
GCS object store and an offline fake of the platform (`daydream_gcp.testing`)."""

from __future__ import annotations
