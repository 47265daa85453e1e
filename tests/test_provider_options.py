"""Provider options are read by one mechanism: the same refusals on every provider."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from daydream_core.errors import ConfigurationError
from daydream_core.provider_options import read_options


@dataclass
class Declared:
    region: str = "here"
    retries: int = 3
    wait_s: float = 0.5
    fast: bool = False


def test_given_over_environment_over_standard_over_default() -> None:
    environ = {"X_RETRIES": "5", "X_WAIT_S": "2", "PLATFORM_REGION": "there"}
    values = read_options(
        Declared,
        "x",
        {"wait_s": "1.5", "fast": "yes"},
        environ,
        "X_",
        {"region": "PLATFORM_REGION"},
    )
    assert values == {"region": "there", "retries": 5, "wait_s": 1.5, "fast": True}
    assert read_options(Declared, "x", {}, {}, "X_") == {}  # defaults are the dataclass's


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"regoin": "a"}, ["unknown x option 'regoin'", "valid options: region, retries"]),
        ({"retries": "many"}, ["x option retries='many' is not a valid int"]),
        ({"wait_s": "nan"}, ["wait_s='nan' is not a finite number"]),
        ({"wait_s": "inf"}, ["wait_s='inf' is not a finite number"]),
        ({"wait_s": "soon"}, ["wait_s='soon' is not a valid float"]),
        ({"fast": "maybe"}, ["fast='maybe' is not a valid bool"]),
    ],
)
def test_refusals_are_one_line(options: dict[str, str], words: list[str]) -> None:
    with pytest.raises(ConfigurationError) as refused:
        read_options(Declared, "x", options, {}, "X_")
    assert "\n" not in str(refused.value) and all(w in str(refused.value) for w in words)


@pytest.mark.parametrize(
    ("provider", "option"),
    [("aws", "backoff_cap_s"), ("gcp", "backoff_cap_s"), ("azure", "backoff_cap_s"),
     ("ray", "keep_alive_s")],
)  # fmt: skip
def test_every_cloud_provider_refuses_a_non_finite_number(provider: str, option: str) -> None:
    module = __import__(f"daydream_{provider}.options", fromlist=["x"])
    declared = next(
        v for k, v in vars(module).items() if k.endswith("Options") and isinstance(v, type)
    )
    with pytest.raises(ConfigurationError, match=rf"{option}='nan' is not a finite number"):
        declared.parse({option: "nan"}, environ={})
