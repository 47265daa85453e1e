"""The fake's Azure Resource Manager: the Microsoft.Web calls the adapter makes, as ARM answers.

Plans (``serverfarms``) and function apps (``sites``) in one subscription and resource group;
app settings; the indexed functions of an app and their keys. PUTs of plans and apps are
long-running operations: 202 with ``Azure-AsyncOperation`` (polled: InProgress, then
Succeeded) and ``retry-after-ms``, since azure-core waits 30 s on ``Retry-After: 0`` or no
hint. Errors carry ARM's ``{"error": {"code", "message"}}``. Routing and state only: the
HTTPS server, the bearer-token check and the function host live in `daydream_azure.testing`.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

PROVIDER = "Microsoft.Web"
RETRY_AFTER_MS = "20"
Answer = tuple[int, dict[str, str], bytes]
_RESOURCE = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<group>[^/]+)/providers/Microsoft\.Web/"
    r"(?P<kind>serverfarms|sites)(?:/(?P<name>[^/]+)(?P<rest>/.*)?)?$",
    re.IGNORECASE,
)


def error(status: int, code: str, message: str) -> Answer:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    return status, {"Content-Type": "application/json"}, body


def ok(value: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Answer:
    return (
        status,
        {"Content-Type": "application/json", **(headers or {})},
        json.dumps(value).encode(),
    )


@dataclass
class _Operation:
    polls: int = 0


@dataclass
class ArmState:
    plans: dict[str, dict[str, Any]] = field(default_factory=dict)
    sites: dict[str, dict[str, Any]] = field(default_factory=dict)
    settings: dict[str, dict[str, str]] = field(default_factory=dict)
    functions: dict[str, dict[str, str]] = field(default_factory=dict)  # app -> {name: route}
    keys: dict[str, str] = field(default_factory=dict)


class ArmApi:
    """Microsoft.Web resources of one resource group, by REST path."""

    def __init__(
        self,
        subscription: str,
        group: str,
        base_url: str,
        on_site: Callable[[str, dict[str, Any]], None],
        on_settings: Callable[[str, dict[str, str]], None],
        on_delete: Callable[[str], None],
    ) -> None:
        self.subscription = subscription
        self.group = group
        self.base_url = base_url
        self.state = ArmState()
        self._on_site = on_site
        self._on_settings = on_settings
        self._on_delete = on_delete
        self._operations: dict[str, _Operation] = {}
        self._lock = threading.Lock()

    def resource_id(self, kind: str, name: str) -> str:
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.group}/providers/"
            f"{PROVIDER}/{kind}/{name}"
        )

    def handle(self, method: str, path: str, body: bytes) -> Answer:
        if path.startswith("/fake/operations/"):
            return self._operation(path.rsplit("/", 1)[-1])
        match = _RESOURCE.match(path)
        if match is None:
            return error(404, "InvalidResourceType", f"no such resource path {path!r}")
        if match["sub"] != self.subscription:
            return error(404, "SubscriptionNotFound", f"subscription {match['sub']} not found")
        if match["group"].lower() != self.group.lower():
            return error(
                404, "ResourceGroupNotFound", f"resource group {match['group']!r} not found"
            )
        kind, name, rest = match["kind"].lower(), match["name"], match["rest"] or ""
        request = json.loads(body) if body else {}
        with self._lock:
            if name is None:
                return (
                    self._list(kind) if method == "GET" else error(405, "MethodNotAllowed", method)
                )
            if kind == "serverfarms":
                return self._plan(method, name, request)
            return self._site(method, name, rest, request)

    # -- long-running operations ---------------------------------------------------------------

    def _accepted(self, location: str) -> Answer:
        operation = uuid.uuid4().hex
        self._operations[operation] = _Operation()
        url = f"{self.base_url}/fake/operations/{operation}?api-version=2025-05-01"
        return 202, {"Azure-AsyncOperation": url, "retry-after-ms": RETRY_AFTER_MS}, b""

    def _operation(self, operation: str) -> Answer:
        with self._lock:
            state = self._operations.get(operation)
            if state is None:
                return error(404, "OperationNotFound", operation)
            state.polls += 1
            done = state.polls > 1
        status = "Succeeded" if done else "InProgress"
        return ok({"id": operation, "status": status}, headers={"retry-after-ms": RETRY_AFTER_MS})

    # -- plans ---------------------------------------------------------------------------------

    def _list(self, kind: str) -> Answer:
        items = self.state.plans if kind == "serverfarms" else self.state.sites
        return ok({"value": list(items.values()), "nextLink": None})

    def _plan(self, method: str, name: str, request: dict[str, Any]) -> Answer:
        plans = self.state.plans
        if method == "GET":
            if name not in plans:
                return error(404, "ResourceNotFound", f"App Service plan {name} not found")
            return ok(plans[name])
        if method == "PUT":
            sku = request.get("sku") or {}
            if sku.get("tier") != "FlexConsumption" and sku.get("name") != "FC1":
                return error(400, "BadRequest", "the fake serves Flex Consumption (FC1) plans only")
            properties = dict(request.get("properties") or {})
            properties.update(provisioningState="Succeeded", numberOfSites=0, status="Ready")
            plans[name] = {
                "id": self.resource_id("serverfarms", name),
                "name": name,
                "type": f"{PROVIDER}/serverfarms",
                "location": request.get("location"),
                "kind": request.get("kind", "functionapp"),
                "tags": request.get("tags") or {},
                "sku": sku,
                "properties": properties,
            }
            return self._accepted(self.resource_id("serverfarms", name))
        if method == "DELETE":
            if name not in plans:
                return error(404, "ResourceNotFound", f"App Service plan {name} not found")
            users = [s for s, site in self.state.sites.items() if _plan_of(site) == name.lower()]
            if users:
                return error(409, "Conflict", f"plan {name} still hosts {', '.join(users)}")
            del plans[name]
            return 200, {}, b""
        return error(405, "MethodNotAllowed", method)

    # -- sites ---------------------------------------------------------------------------------

    def _site(self, method: str, name: str, rest: str, request: dict[str, Any]) -> Answer:
        sites = self.state.sites
        if method == "PUT" and not rest:
            return self._put_site(name, request)
        if name not in sites:
            return error(404, "ResourceNotFound", f"function app {name} not found")
        if not rest:
            if method == "GET":
                return ok(sites[name])
            if method == "DELETE":
                del sites[name]
                self.state.settings.pop(name, None)
                self.state.functions.pop(name, None)
                self.state.keys.pop(name, None)
                self._on_delete(name)
                return 200, {}, b""
        if rest == "/config/appsettings" and method == "PUT":
            values = {str(k): str(v) for k, v in (request.get("properties") or {}).items()}
            self.state.settings[name] = values
            self._on_settings(name, values)
            return ok(self._settings(name))
        if rest == "/config/appsettings/list" and method == "POST":
            return ok(self._settings(name))
        if rest == "/functions" and method == "GET":
            found = [self._function(name, f) for f in self.state.functions.get(name, {})]
            return ok({"value": found, "nextLink": None})
        match = re.fullmatch(r"/functions/([^/]+)(/listkeys)?", rest)
        if match and match[1] in self.state.functions.get(name, {}):
            if match[2] and method == "POST":
                return ok({"default": self.state.keys[name]})
            if not match[2] and method == "GET":
                return ok(self._function(name, match[1]))
        if match:
            return error(404, "NotFound", f"function {match[1]} not found in {name}")
        return error(404, "NotFound", f"no such operation {method} {rest}")

    def _put_site(self, name: str, request: dict[str, Any]) -> Answer:
        properties = dict(request.get("properties") or {})
        plan = str(properties.get("serverFarmId", "")).rsplit("/", 1)[-1]
        if plan not in self.state.plans:
            return error(400, "BadRequest", f"serverFarmId names no plan: {plan!r}")
        config = properties.get("functionAppConfig") or {}
        memory = (config.get("scaleAndConcurrency") or {}).get("instanceMemoryMB")
        if memory not in (512, 2048, 4096):
            return error(400, "BadRequest", f"instanceMemoryMB {memory!r} is not 512, 2048 or 4096")
        if not ((config.get("deployment") or {}).get("storage") or {}).get("value"):
            return error(400, "BadRequest", "Flex Consumption apps need deployment storage")
        host = f"{self.base_url.removeprefix('https://')}/sites/{name}"
        properties.update(
            state="Running",
            defaultHostName=host,
            enabledHostNames=[host, f"{host}/scm"],
            hostNameSslStates=[
                {"name": host, "hostType": "Standard", "sslState": "Disabled"},
                {"name": f"{host}/scm", "hostType": "Repository", "sslState": "Disabled"},
            ],
            sku="FlexConsumption",
            provisioningState="Succeeded",
        )
        site = {
            "id": self.resource_id("sites", name),
            "name": name,
            "type": f"{PROVIDER}/sites",
            "location": request.get("location"),
            "kind": request.get("kind", "functionapp,linux"),
            "tags": request.get("tags") or {},
            "properties": properties,
        }
        if request.get("identity"):
            site["identity"] = {**request["identity"], "principalId": str(uuid.uuid4())}
        self.state.sites[name] = site
        self.state.keys.setdefault(name, secrets.token_urlsafe(40))
        self._on_site(name, site)
        return self._accepted(self.resource_id("sites", name))

    def _settings(self, name: str) -> dict[str, Any]:
        return {
            "id": f"{self.resource_id('sites', name)}/config/appsettings",
            "name": "appsettings",
            "type": f"{PROVIDER}/sites/config",
            "properties": dict(self.state.settings.get(name, {})),
        }

    def _function(self, app: str, function: str) -> dict[str, Any]:
        route = self.state.functions[app][function]
        return {
            "id": f"{self.resource_id('sites', app)}/functions/{function}",
            "name": f"{app}/{function}",
            "type": f"{PROVIDER}/sites/functions",
            "properties": {
                "name": function,
                "language": "python",
                "isDisabled": False,
                "invoke_url_template": f"{self.base_url}/sites/{app}/api/{route}",
                "config": {"bindings": [{"type": "httpTrigger", "route": route}]},
            },
        }

    def set_functions(self, app: str, routes: Mapping[str, str]) -> None:
        """What indexing the app's package found: {route: function name}."""
        with self._lock:
            if app in self.state.sites:
                self.state.functions[app] = {name: route for route, name in routes.items()}


def _plan_of(site: Mapping[str, Any]) -> str:
    return str((site.get("properties") or {}).get("serverFarmId", "")).rsplit("/", 1)[-1].lower()
