"""Control plane: the plan, function app, settings, package and key of one deployed function.

azure-mgmt-web manages Flex Consumption plans and function apps (long-running PUTs polled by
azure-core's ARM poller), their app settings and function keys; the package goes to the app's
deployment container through the OneDeploy endpoint of its SCM site (``/api/publish``), as
Azure's own tools do for Flex Consumption. One plan per app (Flex Consumption's rule); both
carry daydream's tags and the core's hashed name.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.web import WebSiteManagementClient
from azure.mgmt.web import models as m

from daydream_azure import wire
from daydream_azure.options import AzureOptions
from daydream_azure.packaging import Package
from daydream_core.errors import ProviderError
from daydream_core.model import Tier
from daydream_core.workflow import RuntimeEnvironment

FLEX_SKU = m.SkuDescription(name="FC1", tier="FlexConsumption")
DEPLOYMENT_CONNECTION_SETTING = "DEPLOYMENT_STORAGE_CONNECTION_STRING"
PACKAGE_CONTAINER_PREFIX = "daydream-pkg-"
# Kudu's deployment states (DeployStatus): 3 failed, 4 succeeded; others are in progress.
DEPLOY_FAILED, DEPLOY_SUCCEEDED = 3, 4
POLL_S = 1.0


def package_container(app: str) -> str:
    """The Blob container holding `app`'s deployed package (one per app)."""
    return PACKAGE_CONTAINER_PREFIX + hashlib.sha256(app.encode()).hexdigest()[:20]


def tags(runtime: RuntimeEnvironment, tier: Tier, deployment: str | None = None) -> dict[str, str]:
    labels = {wire.TAG_MANAGED: "true", wire.TAG_RUNTIME: runtime.name, wire.TAG_TIER: tier.name}
    if deployment is not None:
        labels[wire.TAG_DEPLOYMENT] = deployment
    return labels


def is_managed(resource: Any, deployment: str | None = None) -> bool:
    """daydream's tag, and the deployment's when one is given."""
    found = getattr(resource, "tags", None) or {}
    if found.get(wire.TAG_MANAGED) != "true":
        return False
    return deployment is None or found.get(wire.TAG_DEPLOYMENT) == deployment


@dataclass(frozen=True)
class Endpoint:
    """Where a deployed function answers, and the key it wants."""

    url: str
    key: str


class Management:
    """The control-plane calls of the adapter, for one subscription and resource group."""

    def __init__(
        self,
        client: WebSiteManagementClient,
        options: AzureOptions,
        token: Callable[[], str],
        http: requests.Session,
        sleep: Callable[[float], Any],
    ) -> None:
        self.client = client
        self.options = options
        self.subscription, self.group, self.location = options.require_account()
        self._token = token
        self._http = http
        self._sleep = sleep

    # -- the plan and the app ------------------------------------------------------------------

    def ensure_plan(self, name: str, labels: Mapping[str, str]) -> str:
        """The plan's resource id, creating a Flex Consumption plan when missing."""
        try:
            plan = self.client.app_service_plans.get(self.group, name)
        except ResourceNotFoundError:
            plan = self.client.app_service_plans.begin_create_or_update(
                self.group,
                name,
                m.AppServicePlan(
                    location=self.location,
                    kind="functionapp",
                    tags=dict(labels),
                    sku=FLEX_SKU,
                    properties=m.AppServicePlanProperties(reserved=True),  # Linux
                ),
            ).result()
        return str(plan.id)

    def desired_site(
        self,
        plan_id: str,
        tier: Tier,
        labels: Mapping[str, str],
        deployment_container_url: str,
        identity: bool,
    ) -> m.Site:
        if identity:
            authentication = m.FunctionsDeploymentStorageAuthentication(
                type="SystemAssignedIdentity"
            )
        else:
            authentication = m.FunctionsDeploymentStorageAuthentication(
                type="StorageAccountConnectionString",
                storage_account_connection_string_name=DEPLOYMENT_CONNECTION_SETTING,
            )
        site = m.Site(
            location=self.location,
            kind="functionapp,linux",
            tags=dict(labels),
            properties=m.SiteProperties(
                server_farm_id=plan_id,
                https_only=True,
                reserved=True,
                function_app_config=m.FunctionAppConfig(
                    deployment=m.FunctionsDeployment(
                        storage=m.FunctionsDeploymentStorage(
                            type="blobContainer",
                            value=deployment_container_url,
                            authentication=authentication,
                        )
                    ),
                    runtime=m.FunctionsRuntime(name="python", version=self.options.python_version),
                    scale_and_concurrency=m.FunctionsScaleAndConcurrency(
                        instance_memory_mb=tier.memory_mb,
                        maximum_instance_count=self.options.maximum_instance_count,
                        triggers=m.FunctionsScaleAndConcurrencyTriggers(
                            http=m.FunctionsScaleAndConcurrencyTriggersHttp(
                                per_instance_concurrency=self.options.per_instance_concurrency
                            )
                        ),
                    ),
                ),
            ),
        )
        if identity:
            site.identity = m.ManagedServiceIdentity(type="SystemAssigned")
        return site

    def ensure_site(self, name: str, desired: m.Site) -> m.Site:
        """The function app, created or brought to `desired` (its tags and scale settings)."""
        try:
            current = self.client.web_apps.get(self.group, name)
        except ResourceNotFoundError:
            current = None
        if current is not None and _same_site(current, desired):
            return current
        return self.client.web_apps.begin_create_or_update(self.group, name, desired).result()

    def settings(self, name: str) -> dict[str, str]:
        found = self.client.web_apps.list_application_settings(self.group, name)
        return dict(found.properties or {})

    def put_settings(self, name: str, values: Mapping[str, str]) -> None:
        self.client.web_apps.update_application_settings(
            self.group, name, m.StringDictionary(properties=dict(values))
        )

    # -- the package ---------------------------------------------------------------------------

    def publish(self, site: m.Site, package: Package) -> None:
        """OneDeploy the package to the app's SCM site and wait for the deployment to finish."""
        scm = _scm_host(site)
        headers = {"Authorization": f"Bearer {self._token()}", "Content-Type": "application/zip"}
        url = f"https://{scm}/api/publish"
        try:
            answer = self._http.post(
                url,
                verify=self.options.verify,  # per call: REQUESTS_CA_BUNDLE beats Session.verify
                params={"RemoteBuild": "false", "Deployer": "daydream"},
                data=package.path.read_bytes(),
                headers=headers,
                timeout=(10, self.options.deploy_timeout_s or None),
            )
        except requests.RequestException as exc:
            raise ProviderError(f"deploying the package to {site.name!r} failed: {exc}") from None
        if answer.status_code not in (200, 202):
            raise ProviderError(
                f"deploying the package to {site.name!r} failed: HTTP {answer.status_code} "
                f"{answer.text[:200]}"
            )
        deadline = time.monotonic() + self.options.deploy_timeout_s
        while True:
            status = self._http.get(
                f"https://{scm}/api/deployments/latest",
                verify=self.options.verify,
                headers={"Authorization": f"Bearer {self._token()}"},
                timeout=30,
            )
            state = status.json() if status.status_code == 200 else {}
            if state.get("status") == DEPLOY_SUCCEEDED:
                return
            if state.get("status") == DEPLOY_FAILED:
                raise ProviderError(
                    f"the package deployment to {site.name!r} failed: "
                    f"{state.get('status_text') or state.get('log_url') or 'no reason given'}"
                )
            if time.monotonic() > deadline:
                raise ProviderError(
                    f"the package deployment to {site.name!r} did not finish within "
                    f"{self.options.deploy_timeout_s:g} s"
                )
            self._sleep(POLL_S)

    # -- the function --------------------------------------------------------------------------

    def endpoint(self, name: str, wait: bool) -> Endpoint:
        """The trigger URL and function key of `name`'s function; with `wait`, until the host
        has indexed it after a deployment. Raises `ResourceNotFoundError` when absent."""
        deadline = time.monotonic() + self.options.deploy_timeout_s
        while True:
            try:
                function = self.client.web_apps.get_function(self.group, name, wire.FUNCTION)
                break
            except ResourceNotFoundError:
                if not wait or time.monotonic() > deadline:
                    raise
                self.client.web_apps.get(self.group, name)  # the app itself must exist
                self._sleep(POLL_S)
        url = function.properties.invoke_url_template if function.properties else None
        if not url:
            raise ProviderError(f"function app {name!r} reports no trigger URL")
        keys = self.client.web_apps.list_function_keys(self.group, name, wire.FUNCTION)
        # ARM answers this one flat ({"default": KEY}), outside StringDictionary.properties.
        key = (keys.properties or {}).get("default") or keys.get("default")
        if not key:
            raise ProviderError(f"function app {name!r} has no default function key")
        return Endpoint(url, key)

    # -- delete and list -----------------------------------------------------------------------

    def delete_app(self, name: str) -> None:
        """The app, then its plan (a plan with an app cannot go); missing ones are fine."""
        with contextlib.suppress(ResourceNotFoundError):
            self.client.web_apps.delete(self.group, name)
        self.delete_plan(name)

    def delete_plan(self, name: str) -> None:
        with contextlib.suppress(ResourceNotFoundError):
            self.client.app_service_plans.delete(self.group, name)

    def cleanup(
        self, prefix: str, deployment: str | None, dry_run: bool
    ) -> tuple[list[str], list[str]]:
        """Remove daydream's apps and plans under `prefix` (the deployment's, if given, by
        its tag too); (the apps' names, what was or would be removed)."""
        apps = [str(site.name) for site in self.managed_apps(prefix, deployment)]
        plans = [str(plan.name) for plan in self.managed_plans(prefix, deployment)]
        removed = [f"function app {name}" for name in apps] + [f"plan {name}" for name in plans]
        if not dry_run:
            for name in apps:
                self.delete_app(name)
            for name in plans:
                self.delete_plan(name)
        return apps, removed

    def managed_apps(self, prefix: str, deployment: str | None = None) -> list[m.Site]:
        return [
            site
            for site in self.client.web_apps.list_by_resource_group(self.group)
            if str(site.name).startswith(prefix) and is_managed(site, deployment)
        ]

    def managed_plans(self, prefix: str, deployment: str | None = None) -> list[m.AppServicePlan]:
        return [
            plan
            for plan in self.client.app_service_plans.list_by_resource_group(self.group)
            if str(plan.name).startswith(prefix) and is_managed(plan, deployment)
        ]


def _scm_host(site: m.Site) -> str:
    states = (site.properties.host_name_ssl_states if site.properties else None) or []
    for state in states:
        if state.host_type == "Repository" and state.name:
            return str(state.name)
    raise ProviderError(f"function app {site.name!r} reports no SCM host for deployments")


def _same_site(current: m.Site, desired: m.Site) -> bool:
    def shape(site: m.Site) -> Any:
        config = site.properties.function_app_config if site.properties else None
        scale = config.scale_and_concurrency if config else None
        storage = config.deployment.storage if config and config.deployment else None
        return (
            dict(site.tags or {}),
            str(site.properties.server_farm_id or "").lower() if site.properties else None,
            scale.as_dict() if scale else None,
            storage.value if storage else None,
            config.runtime.as_dict() if config and config.runtime else None,
        )

    return bool(shape(current) == shape(desired))


def http_error(exc: HttpResponseError) -> str:
    """One line from an ARM error."""
    message = getattr(getattr(exc, "error", None), "message", None) or exc.message or str(exc)
    return str(message).splitlines()[0]
