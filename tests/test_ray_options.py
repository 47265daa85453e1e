"""The ray provider's settings, tier checks, price table and store choice: no Ray started."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from daydream_ray.cluster import NodeOffer, check_tiers, fitting_instances, tier_request
from daydream_ray.handler import _strip_paths
from daydream_ray.options import RayOptions, onprem_prices
from daydream_ray.store import choose_store, warn_if_not_shared

from daydream_core.errors import ConfigurationError
from daydream_core.model import HIGH, LOW, Tier
from daydream_core.objectstore import LocalObjectStore
from daydream_core.pricing import AWS_LAMBDA_X86


def parse(**options: str) -> RayOptions:
    return RayOptions.parse(options, environ={})


def test_defaults_describe_two_tiers_on_a_local_instance() -> None:
    options = parse()
    assert options.address is None
    tiers = options.tiers()
    assert tiers[HIGH] == Tier(HIGH, 2048, 1.0)
    assert tiers[LOW] == Tier(LOW, 1024, 0.5)
    assert options.custom_resources(HIGH) == {} and options.label_selector(LOW) == {}
    assert options.runtime_env_dict() is None


def test_options_come_from_the_environment_under_the_command_line() -> None:
    options = RayOptions.parse(
        {"high_cpus": "4"}, environ={"DAYDREAM_RAY_HIGH_CPUS": "2", "DAYDREAM_RAY_LOW_CPUS": "1"}
    )
    assert options.high_cpus == 4.0 and options.low_cpus == 1.0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"adress": "auto"}, "unknown ray option 'adress'; valid options: address"),
        ({"address": "http://x"}, "valid: auto, ray://HOST:PORT or HOST:PORT"),
        ({"high_cpus": "many"}, "high_cpus='many' is not a valid float"),
        ({"low_cpus": "0"}, "low_cpus must be positive"),
        ({"low_memory_mb": "4096"}, "must not exceed the high-end one"),
        ({"high_resource": "gpu node"}, "NAME or NAME=AMOUNT"),
        ({"low_label": "nodetype"}, "low_label='nodetype'; valid: KEY=VALUE"),
        ({"prices": "azure"}, "valid: onprem, aws-x86_64, aws-arm64"),
        ({"runtime_env": "{not json"}, "runtime_env is not valid JSON"),
        ({"runtime_env": "[1]"}, "cannot read it"),
        ({"runtime_env": '["pip"]'}, "cannot read it"),
        ({"max_concurrency": "0"}, "max_concurrency must be at least 1"),
        ({"log_to_driver": "maybe"}, "log_to_driver='maybe' is not a valid bool"),
    ],
)
def test_bad_options_are_one_line_naming_what_is_valid(
    options: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigurationError) as error:
        parse(**options)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("address", ["auto", "ray://10.0.0.5:10001", "head:6379", "[::1]:6379"])
def test_cluster_addresses_accepted(address: str) -> None:
    assert parse(address=address).address == address


def test_custom_resources_and_labels_map_tiers_to_node_types() -> None:
    options = parse(high_resource="bignode", low_resource="small=0.5", high_label="type=cpu-high")
    assert options.custom_resources(HIGH) == {"bignode": 0.001}
    assert options.custom_resources(LOW) == {"small": 0.5}
    assert options.label_selector(HIGH) == {"type": "cpu-high"}


def test_runtime_env_from_json_or_a_file(tmp_path: Path) -> None:
    assert parse(runtime_env='{"env_vars": {"A": "1"}}').runtime_env_dict() == {
        "env_vars": {"A": "1"}
    }
    path = tmp_path / "env.json"
    path.write_text(json.dumps({"pip": ["pyccl"]}))
    assert parse(runtime_env=str(path)).runtime_env_dict() == {"pip": ["pyccl"]}


def test_onprem_prices_bill_core_hours_and_gb_hours() -> None:
    table = parse(core_hour_usd="0.036", gb_hour_usd="0.0036").price_table()
    assert table.per_vcpu_second == pytest.approx(0.00001)
    assert table.per_gb_second == pytest.approx(0.000001)
    assert table.per_request == 0.0 and table.init_billed
    # One hour of a 2-CPU, 4 GB instance: 2 core-hours and 4 GB-hours.
    assert table.cost(4096, 3_600_000.0, vcpus=2.0) == pytest.approx(2 * 0.036 + 4 * 0.0036)
    assert "configured" in table.source
    assert "N2" in onprem_prices(0.031611, 0.004237).source


def test_prices_can_follow_a_named_cloud() -> None:
    assert parse(prices="aws-x86_64").price_table() is AWS_LAMBDA_X86


def test_tier_check_names_what_no_node_offers() -> None:
    nodes = [NodeOffer("a" * 16, {"CPU": 4.0, "memory": 8 * 2**30, "small": 1.0}, {"t": "x"})]
    tiers = {HIGH: Tier(HIGH, 2048, 1.0), LOW: Tier(LOW, 1024, 0.5)}
    check_tiers(nodes, tiers, {LOW: {"small": 0.1}}, {HIGH: {"t": "x"}})
    with pytest.raises(ConfigurationError) as error:
        check_tiers(nodes, {HIGH: Tier(HIGH, 2048, 8.0)}, {}, {})
    assert "no node fits the high tier (8 CPU, 2048 MB)" in str(error.value)
    assert "aaaaaaaa: 4 CPU, 8192 MB" in str(error.value)
    with pytest.raises(ConfigurationError, match="label t=y"):
        check_tiers(nodes, tiers, {}, {HIGH: {"t": "y"}})
    with pytest.raises(ConfigurationError, match=r"big=0\.001"):
        check_tiers(nodes, tiers, {LOW: {"big": 0.001}}, {})


def test_instances_that_fit_sum_over_nodes() -> None:
    nodes = [
        NodeOffer("a", {"CPU": 4.0, "memory": 8 * 2**30}, {}),
        NodeOffer("b", {"CPU": 2.0, "memory": 1 * 2**30}, {}),
    ]
    request = tier_request(Tier(LOW, 1024, 0.5), {})
    assert fitting_instances(nodes, request) == 8 + 1  # node b is short of memory


def test_store_is_a_shared_directory_or_a_plugin_uri(tmp_path: Path) -> None:
    default = choose_store(None, tmp_path)
    assert isinstance(default, LocalObjectStore) and default.root == (tmp_path / "store")
    shared = choose_store(str(tmp_path / "shared"), tmp_path)
    assert shared.uri == (tmp_path / "shared").as_uri()
    assert choose_store((tmp_path / "u").as_uri(), tmp_path).uri == (tmp_path / "u").as_uri()
    with pytest.raises(ConfigurationError, match="no installed plugin opens nosuch://"):
        choose_store("nosuch://bucket/prefix", tmp_path)


def test_a_local_store_on_several_nodes_is_warned_about(tmp_path: Path) -> None:
    store = choose_store(None, tmp_path)
    with pytest.warns(UserWarning, match="shared directory"):
        warn_if_not_shared(store, nodes=3, option=None)
    warn_if_not_shared(store, nodes=1, option=None)  # no warning: one node sees it


def test_instances_drop_the_drivers_folders_from_their_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "path", [str(tmp_path), "", os.path.dirname(os.__file__)])
    _strip_paths([str(tmp_path)])
    assert sys.path == [os.path.dirname(os.__file__)]


def test_without_ray_the_provider_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from daydream_ray.plugin import _create

    from daydream_core.provider import ProviderSettings

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ConfigurationError, match=r"pip install 'daydream\[ray\]'"):
        _create(ProviderSettings(state_dir=tmp_path))
