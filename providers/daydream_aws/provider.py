"""The AWS Lambda adapter: boto3 behind the provider contract.

One function per (runtime environment, tier), with deterministic hashed names and daydream's
tags; the runtime environment is one layer (or a container image when it is too large);
synchronous invocations with the log tail, whose REPORT line gives what was measured and
billed; hot starts as concurrent warm-up invocations that hold their instance; the object
store is a prefix of a private S3 bucket. boto3 is imported here only, and this module only
when the provider is created.
"""

from __future__ import annotations

from daydream_aws.facts import PROVISIONED_PRICES, SNAPSTART_PRICES
from daydream_aws.invocation import AwsInvocation
from daydream_core.provider import ProviderSettings

__all__ = ["PROVISIONED_PRICES", "SNAPSTART_PRICES", "AwsProvider"]


class AwsProvider(AwsInvocation):
    """AWS Lambda, as daydream uses it: the account (`account`), runtime environments
    (`layers`), functions (`functions`) and invocations (`invocation`), one job a module."""

    @classmethod
    def from_settings(cls, settings: ProviderSettings) -> AwsProvider:
        return cls(settings)
