"""An offline Azure for tests and the conformance suite, on 127.0.0.1 only.

- **HTTPS**: one server with a self-signed certificate for 127.0.0.1, made at start with
  `cryptography`; clients get its path as ``connection_verify``, so azure-core's stock
  bearer-token policy (which refuses plain http) runs unchanged. It serves the management API
  (`daydream_azure.fake_arm`), each function app's SCM site (OneDeploy ``/api/publish`` and
  ``/api/deployments/latest``) and its trigger URL (``/sites/APP/api/ROUTE``), which runs the
  deployed package in real instance processes (`daydream_azure.fake_host`).
- **Identity**: App Service's managed-identity endpoint on plain http (as on Azure), announced
  through ``IDENTITY_ENDPOINT`` and ``IDENTITY_HEADER``, so `DefaultAzureCredential` itself gets
  the tokens that every management and SCM request must carry.
- **Blob**: Azurite (`daydream_azure.azurite`), holding the deployed packages and the data.
- **Faults**: `throttle(n)` answers the next n trigger requests 429, `unavailable(n)` 503,
  `kill_next(n)` ends the instance that takes each of the next n requests while it serves,
  `kill(instance)` ends one.

It is the `PlatformView` of the conformance suite: environments and leftovers, seen from the
platform's side; no per-request bill, since Azure shows none (`billing` is None; `metered`
and `execution_units` give what it meters, for this package's own tests).

Use it as a context manager; it sets the standard Azure variables
(subscription, resource group, location, identity, storage) for its lifetime::

    with AzureFake() as fake:
        provider = AzureProvider(ProviderSettings(state_dir=tmp, options=fake.options()))
"""

from __future__ import annotations

import base64
import datetime
import http.server
import ipaddress
import json
import os
import secrets
import ssl
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from daydream_conformance.view import BillingView, EnvironmentView

from daydream_azure import wire
from daydream_azure.azurite import Azurite
from daydream_azure.fake_arm import Answer, ArmApi, error, ok
from daydream_azure.fake_host import FunctionHost, InstanceGone
from daydream_azure.packaging import check_package
from daydream_core import faults as fault_injection
from daydream_core.provider import ProviderSettings

SUBSCRIPTION = "00000000-0000-0000-0000-0000000da7da"
GROUP = "daydream-fake"
LOCATION = "eastus"
PACKAGE_BLOB = "released-package.zip"
_CLEARED_ENV = (
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_USERNAME",
    "AZURE_PASSWORD",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_AUTHORITY_HOST",
    "MSI_ENDPOINT",
    "MSI_SECRET",
    "IDENTITY_SERVER_THUMBPRINT",
    "AZURE_POD_IDENTITY_AUTHORITY_HOST",
    "AZURE_STORAGE_ACCOUNT_URL",
    "AZURE_TOKEN_CREDENTIALS",
)


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A new key and certificate for 127.0.0.1 (and localhost); their paths."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "daydream azure fake")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "fake-cert.pem", directory / "fake-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


class _TlsServer(http.server.ThreadingHTTPServer):
    """TLS handshakes in each request's own thread, so one slow client blocks no other."""

    daemon_threads = True
    context: ssl.SSLContext

    def finish_request(self, request: Any, client_address: Any) -> None:
        try:
            wrapped = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        self.RequestHandlerClass(wrapped, client_address, self)  # type: ignore[arg-type]


class AzureFake:
    """Management API, SCM sites, trigger URLs, identity and Blob storage, offline."""

    def __init__(
        self, *, max_instances: int = 100, faults: fault_injection.FaultPlan | None = None
    ) -> None:
        self.max_instances = max_instances
        # A fault plan (tests only; DAYDREAM_FAULTS): the fake throttles that fraction of
        # trigger requests, and each instance process is handed the plan by its launcher
        # (kill, oom, timeout, store faults strike inside the instance).
        plan = faults if faults is not None else fault_injection.from_environment()
        self.faults = plan
        self._platform_faults = fault_injection.PlatformFaults(plan) if plan else None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._lock = threading.Lock()
        self._tokens: set[str] = set()
        self._identity_secret = secrets.token_hex(16)
        self._faults = {"throttle": 0, "unavailable": 0, "kill": 0}
        self._deployments: dict[str, dict[str, Any]] = {}
        self._saved_env: dict[str, str | None] = {}
        self.requests = 0  # trigger requests received
        self.calls: list[tuple[str, str]] = []  # management and SCM requests: (method, path)

    # -- lifecycle -----------------------------------------------------------------------------

    def __enter__(self) -> AzureFake:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="daydream-azure-fake-")
        root = Path(self._tmp.name)
        self.cert_path, key_path = self_signed(root)
        self.azurite = Azurite()
        self.azurite.start()
        from azure.storage.blob import BlobServiceClient

        self.blob = BlobServiceClient.from_connection_string(self.azurite.connection_string)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_path, key_path)
        self._https = _TlsServer(("127.0.0.1", 0), _handler(self))
        self._https.context = context
        self.base_url = f"https://127.0.0.1:{self._https.server_address[1]}"
        self._identity = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _identity_handler(self))
        self._identity.daemon_threads = True
        self.identity_url = f"http://127.0.0.1:{self._identity.server_address[1]}/msi/token"
        self.host = FunctionHost(root, faults=self.faults)
        self.arm = ArmApi(
            SUBSCRIPTION,
            GROUP,
            self.base_url,
            self._site_changed,
            self._settings_changed,
            self.host.remove,
        )
        for server in (self._https, self._identity):
            threading.Thread(target=server.serve_forever, daemon=True).start()
        env = {
            "AZURE_SUBSCRIPTION_ID": SUBSCRIPTION,
            "AZURE_RESOURCE_GROUP": GROUP,
            "AZURE_LOCATION": LOCATION,
            "IDENTITY_ENDPOINT": self.identity_url,
            "IDENTITY_HEADER": self._identity_secret,
            "AZURE_STORAGE_CONNECTION_STRING": self.azurite.connection_string,
        }
        for key in (*env, *_CLEARED_ENV):
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ.pop(key, None)
        os.environ.update(env)

    def stop(self) -> None:
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()
        for server in (self._https, self._identity):
            server.shutdown()
            server.server_close()
        self.host.close()
        self.blob.close()
        self.azurite.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    # -- what tests and the suite use ----------------------------------------------------------

    def options(self) -> dict[str, str]:
        """Provider options for an `AzureProvider` against this fake (quick warm-ups and
        backoff); subscription, group, location and credentials come from the environment."""
        return {
            "management_url": self.base_url,
            "connection_verify": str(self.cert_path),
            "install_requirements": "false",
            "warm_hold_ms": "300",
            "timeout_slack_s": "0.5",
            "backoff_base_s": "0.01",
            "backoff_cap_s": "0.05",
            "deploy_timeout_s": "120",
        }

    def throttle(self, count: int) -> None:
        """Answer the next `count` trigger requests with 429 Too Many Requests."""
        with self._lock:
            self._faults["throttle"] = count

    def unavailable(self, count: int) -> None:
        """Answer the next `count` trigger requests with 503 Service Unavailable."""
        with self._lock:
            self._faults["unavailable"] = count

    def kill_next(self, count: int) -> None:
        """End the instance serving each of the next `count` trigger requests, mid-request."""
        with self._lock:
            self._faults["kill"] = count

    def kill(self, instance: str) -> bool:
        return self.host.kill(instance)

    def environments(self, function: str) -> list[EnvironmentView]:
        return self.host.environments(function)

    def billing(self, function: str) -> None:
        """None: Azure keeps no per-request bill a caller can see. It meters each execution
        and reports sums per app (Azure Monitor's FunctionExecutionUnits and
        FunctionExecutionCount), so the adapter's per-request billed time is its own estimate
        and the suite's per-request bill comparisons do not apply (see `metered`)."""
        return None

    def metered(self, function: str) -> list[BillingView]:
        """Each request of `function` as the platform metered it, for this fake's own tests."""
        return self.host.billing(function)

    def execution_units(self, function: str) -> float:
        """What Azure Monitor reports as FunctionExecutionUnits: MB-milliseconds billed."""
        return float(sum(b.billed_ms * b.memory_mb for b in self.host.billing(function)))

    def leftovers(self) -> list[str]:
        """Every plan, app, container and blob on the fake: all of it could be daydream's."""
        found = [f"plan {name}" for name in self.arm.state.plans]
        found += [f"function app {name}" for name in self.arm.state.sites]
        for container in self.blob.list_containers():
            found.append(f"container {container.name}")
            client = self.blob.get_container_client(container.name)
            found += [f"blob {container.name}/{b.name}" for b in client.list_blobs()]
        return found

    # -- management callbacks ------------------------------------------------------------------

    def _site_changed(self, name: str, site: dict[str, Any]) -> None:
        config = site["properties"].get("functionAppConfig") or {}
        scale = config.get("scaleAndConcurrency") or {}
        memory = int(scale.get("instanceMemoryMB", 2048))
        limit = min(self.max_instances, int(scale.get("maximumInstanceCount") or 100))
        self.host.configure(name, memory, limit, self.arm.state.settings.get(name, {}))

    def _settings_changed(self, name: str, settings: dict[str, str]) -> None:
        self._site_changed(name, self.arm.state.sites[name])

    # -- requests ------------------------------------------------------------------------------

    def authorized(self, headers: Any) -> bool:
        scheme, _, token = str(headers.get("Authorization", "")).partition(" ")
        with self._lock:
            return scheme == "Bearer" and token in self._tokens

    def issue_token(self, resource: str) -> dict[str, Any]:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens.add(token)
        return {
            "access_token": token,
            "expires_on": str(int(time.time()) + 3600),
            "resource": resource,
            "token_type": "Bearer",
        }

    def route(self, method: str, target: str, headers: Any, body: bytes) -> Answer:
        parts = urlsplit(target)
        path, query = parts.path, parse_qs(parts.query)
        app, _, rest = path.removeprefix("/sites/").partition("/")
        if not (path.startswith("/sites/") and rest.startswith("api/")):
            with self._lock:
                self.calls.append((method, path))
        if path.startswith("/sites/"):
            if rest.startswith("api/"):
                return self._trigger(
                    app, rest.removeprefix("api/"), method, target, headers, query, body
                )
            if rest.startswith("scm/"):
                if not self.authorized(headers):
                    return error(401, "Unauthorized", "the SCM site needs a bearer token")
                return self._scm(app, rest.removeprefix("scm"), method, body)
        if not self.authorized(headers):
            return error(401, "AuthenticationFailed", "missing or unknown bearer token")
        return self.arm.handle(method, path, body)

    def _scm(self, app: str, path: str, method: str, body: bytes) -> Answer:
        site = self.arm.state.sites.get(app)
        if site is None:
            return error(404, "NotFound", f"no site {app}")
        if path == "/api/publish" and method == "POST":
            problem = check_package(body)
            if problem:
                return error(400, "BadRequest", problem)
            storage = site["properties"]["functionAppConfig"]["deployment"]["storage"]["value"]
            container = self.blob.get_container_client(storage.rstrip("/").rsplit("/", 1)[-1])
            if not container.exists():
                return error(400, "BlobUploadFailedException", f"no container at {storage}")
            container.upload_blob(PACKAGE_BLOB, body, overwrite=True)
            deployment = {"id": uuid.uuid4().hex, "status": 1, "complete": False}
            with self._lock:
                self._deployments[app] = deployment
            threading.Thread(
                target=self._deploy, args=(app, container, deployment), daemon=True
            ).start()
            return ok({"id": deployment["id"]}, status=202)
        if path == "/api/deployments/latest" and method == "GET":
            with self._lock:
                latest = self._deployments.get(app)
            if latest is None:
                return error(404, "NotFound", "no deployment yet")
            return ok(dict(latest))
        return error(404, "NotFound", f"no SCM operation {method} {path}")

    def _deploy(self, app: str, container: Any, deployment: dict[str, Any]) -> None:
        """What the platform does with a published package: read it from the deployment
        container, unpack it and index its functions."""
        import hashlib

        try:
            data = container.download_blob(PACKAGE_BLOB).readall()
            routes = self.host.extract(app, hashlib.sha256(data).hexdigest(), data)
            self.arm.set_functions(app, routes)
            result = {"status": 4, "status_text": "Deployment successful."}
        except Exception as exc:
            result = {"status": 3, "status_text": f"Deployment failed: {exc}"}
        with self._lock:
            deployment.update(result, complete=True)

    def _trigger(
        self, app: str, route: str, method: str, target: str, headers: Any, query: Any, body: bytes
    ) -> Answer:
        with self._lock:
            self.requests += 1
        arm = self.arm.state
        if app not in arm.sites:
            return 404, {"Content-Type": "text/html"}, b"<h1>404 Web Site not found.</h1>"
        key = headers.get(wire.KEY_HEADER) or (query.get("code") or [""])[0]
        if key != arm.keys.get(app):
            return 401, {}, b""
        if route not in arm.functions.get(app, {}).values():
            return 404, {}, b""
        if self._platform_faults is not None and self._platform_faults.throttles(body):
            return 429, {"Retry-After": "1"}, b""  # as its own throttle answers
        with self._lock:
            for fault, status in (("throttle", 429), ("unavailable", 503)):
                if self._faults[fault] > 0:
                    self._faults[fault] -= 1
                    return status, {"Retry-After": "1"}, b""
            kill = self._faults["kill"] > 0
            self._faults["kill"] -= int(kill)
        try:
            acquired = self.host.acquire(app)
        except InstanceGone as exc:
            return 500, {"Content-Type": "text/plain"}, str(exc).encode()
        if acquired is None:
            return 429, {"Retry-After": "1"}, b""  # maximumInstanceCount reached
        instance, cold = acquired
        if kill:
            instance.end()
        request = {
            "method": method,
            "url": f"{self.base_url}{target}",
            "headers": {k.lower(): v for k, v in headers.items()},
            "params": {k: v[0] for k, v in query.items()},
            "route": route,
            "body": base64.b64encode(body).decode(),
        }
        try:
            answer = self.host.serve(instance, cold, request)
        except InstanceGone as exc:
            return 500, {"Content-Type": "text/plain"}, f"{exc} while serving".encode()
        return int(answer["status"]), dict(answer["headers"]), base64.b64decode(answer["body"])


def _handler(fake: AzureFake) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""  # read it all: keep-alive
            try:
                status, headers, payload = fake.route(self.command, self.path, self.headers, body)
            except Exception as exc:  # a fake bug: answer as a platform fault would
                status, headers, payload = error(500, "InternalServerError", repr(exc))
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("x-ms-request-id", str(uuid.uuid4()))
                self.end_headers()
                self.wfile.write(payload)
            except (TimeoutError, BrokenPipeError, ConnectionResetError, ssl.SSLError):
                self.close_connection = True  # the client gave up (its own timeout)

        do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = _serve

    return Handler


def _identity_handler(fake: AzureFake) -> type[http.server.BaseHTTPRequestHandler]:
    class Identity(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            query = parse_qs(urlsplit(self.path).query)
            if self.headers.get("X-IDENTITY-HEADER") != fake._identity_secret:
                status, body = 401, {"error": "invalid_request"}
            else:
                status, body = 200, fake.issue_token((query.get("resource") or [""])[0])
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Identity


@contextmanager
def conformance_environment(workdir: Path) -> Iterator[Any]:
    """The conformance suite's environment for ``--daydream-provider azure``."""
    from daydream_conformance.environment import ConformanceEnvironment

    with AzureFake() as fake:
        yield ConformanceEnvironment(
            settings=ProviderSettings(state_dir=workdir, options=fake.options()),
            view=fake,
            fake=fake,
        )


def fake_provider(fake: AzureFake, state_dir: Path, **options: str) -> Any:
    """An `AzureProvider` against `fake` (its options, overridden by `options`)."""
    from daydream_azure.provider import AzureProvider

    settings = ProviderSettings(state_dir=state_dir, options={**fake.options(), **options})
    return AzureProvider(settings)
