"""daydream's Azure Functions provider: Flex Consumption function apps managed with
azure-mgmt-web, invoked by HTTPS with a function key, Blob storage for data."""

from __future__ import annotations
