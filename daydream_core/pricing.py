"""Price tables: what an invocation costs on a provider."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class PriceTable:
    """Duration and request prices, with the provider's billing rules.

    Duration is billed per GB-second of memory and, where a platform prices CPU apart (Cloud
    Functions, an on-premises cluster), per vCPU-second too. `source` says where the numbers
    come from and when they were checked.
    """

    name: str
    per_gb_second: float
    per_request: float
    billing_granularity_ms: float = 1.0
    init_billed: bool = True
    currency: str = "USD"
    per_vcpu_second: float = 0.0
    source: str = ""

    def billed_ms(self, duration_ms: float) -> float:
        """Round a duration up to the billing granularity."""
        step = self.billing_granularity_ms
        return math.ceil(max(duration_ms, 0.0) / step - 1e-9) * step

    def cost(
        self, memory_mb: int, duration_ms: float, init_ms: float = 0.0, vcpus: float = 0.0
    ) -> float:
        """Cost of one invocation: billed GB-seconds and vCPU-seconds (init included where
        billed) + request."""
        billed = self.billed_ms(duration_ms + (init_ms if self.init_billed else 0.0))
        return self.gb_second_cost(memory_mb, billed / 1000.0, vcpus) + self.per_request

    def gb_second_cost(self, memory_mb: int, seconds: float, vcpus: float = 0.0) -> float:
        """Duration cost alone, for estimates (placement, idle hot starts)."""
        return seconds * (memory_mb / 1024.0 * self.per_gb_second + vcpus * self.per_vcpu_second)


# us-east-1, checked in the design notes; init billed since August 2025.
_AWS_SOURCE = "aws.amazon.com/lambda/pricing, us-east-1, checked 2025-08 (init billed)"
AWS_LAMBDA_X86 = PriceTable(
    "aws-lambda-x86_64", 0.0000166667, 0.20e-6, 1.0, True, source=_AWS_SOURCE
)
AWS_LAMBDA_ARM = PriceTable(
    "aws-lambda-arm64", 0.0000133334, 0.20e-6, 1.0, True, source=_AWS_SOURCE
)
