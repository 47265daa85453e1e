"""The AWS adapter's footing: options, session and clients, what it declares, and the
account, execution role and bucket it checks before anything is created."""

from __future__ import annotations

import math
import threading
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, ProfileNotFound

from daydream_aws import wire
from daydream_aws.aliases import Aliases
from daydream_aws.options import AwsOptions, check_region
from daydream_aws.packaging import Bundle
from daydream_aws.store import S3ObjectStore, s3_client
from daydream_core.backoff import Backoff
from daydream_core.errors import ConfigurationError, ProviderError
from daydream_core.model import Tier
from daydream_core.objectstore import ObjectStore
from daydream_core.pricing import PriceTable
from daydream_core.provider import Capabilities, Provider, ProviderSettings
from daydream_core.workflow import RuntimeEnvironment

CONNECT_TIMEOUT_S = 10
MAX_POOL_CONNECTIONS = 256


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def _message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", "")) or str(exc)


class AwsAccount(Provider):
    """The session, clients and account of the AWS adapter; the rest builds on it."""

    name = "aws"

    def __init__(
        self,
        settings: ProviderSettings,
        *,
        session: Any = None,
        backoff: Backoff | None = None,
        sleep: Any = None,
    ) -> None:
        options = AwsOptions.parse(settings.options)
        if settings.concurrency is not None:
            options = options.with_changes(max_concurrency=settings.concurrency)
        self.options = options
        self.deployment = settings.deployment
        self._state_dir = Path(settings.state_dir) / "aws"
        try:
            self._session = session or boto3.session.Session(
                profile_name=options.profile, region_name=options.region
            )
        except ProfileNotFound as exc:
            raise ConfigurationError(f"aws: {exc}") from None
        self.region: str = self._session.region_name or ""
        if not self.region:
            raise ConfigurationError(
                "aws: no region configured; set AWS_REGION (or AWS_DEFAULT_REGION), a region in "
                "~/.aws/config, or -o region=NAME"
            )
        check_region(self.region, "aws: region")
        if self._session.get_credentials() is None:
            raise ConfigurationError(
                "aws: no credentials found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                "AWS_PROFILE, or sign in with `aws configure` / `aws sso login`"
            )
        self._backoff = backoff or Backoff(
            options.max_attempts, options.backoff_base_s, options.backoff_cap_s
        )
        self._sleep = sleep or threading.Event().wait
        pool = min(MAX_POOL_CONNECTIONS, max(10, options.max_concurrency))
        self._control_config = Config(
            retries={"mode": "standard", "total_max_attempts": 5},
            connect_timeout=CONNECT_TIMEOUT_S,
            max_pool_connections=pool,
        )
        self._pool_connections = pool
        self._lambda = self._client("lambda")
        self._invoke_clients: dict[int, Any] = {}
        self._lock = threading.RLock()
        self._account: tuple[str, str] | None = None
        self._role_arn: str | None = None
        self._bucket: str | None = None
        self._store: S3ObjectStore | None = None
        self._bundles: dict[RuntimeEnvironment, Bundle] = {}
        # Execution environments seen answering, per function: id -> when last seen.
        self._seen: dict[str, dict[str, float]] = {}
        self._code: dict[RuntimeEnvironment, tuple[str, str]] = {}
        self._keys: dict[str, str] = {}  # payload keys by function (never logged)
        # SnapStart and provisioned concurrency: functions invoked through daydream's alias,
        # the warm-up inits paid per function (when), and provisioned capacity (count, since).
        self._aliases = Aliases(self._lambda, self._sleep)
        self._qualified: dict[str, str] = {}
        self._warm_inits: dict[str, list[tuple[float, float]]] = {}
        self._held: dict[str, tuple[int, float]] = {}

    # -- clients -------------------------------------------------------------------------------

    def _client(self, service: str, config: Any = None) -> Any:
        return self._session.client(
            service,
            endpoint_url=self.options.endpoint_url,
            config=config or self._control_config,
        )

    def _invoke_client(self, timeout: float) -> Any:
        """A Lambda client that waits `timeout` plus the slack; botocore retries nothing (a
        retried Invoke would run a component twice): throttling is retried by our backoff."""
        read_timeout = max(1, math.ceil(timeout + self.options.timeout_slack_s))
        with self._lock:
            client = self._invoke_clients.get(read_timeout)
            if client is None:
                config = Config(
                    read_timeout=read_timeout,
                    connect_timeout=CONNECT_TIMEOUT_S,
                    retries={"mode": "standard", "total_max_attempts": 1},
                    max_pool_connections=self._pool_connections,
                    tcp_keepalive=True,
                )
                client = self._client("lambda", config)
                self._invoke_clients[read_timeout] = client
            return client

    # -- what the provider declares ------------------------------------------------------------

    def tiers(self) -> Mapping[str, Tier]:
        return self.options.tiers()

    def prices(self) -> PriceTable:
        return self.options.prices()

    def capabilities(self) -> Capabilities:
        return Capabilities(
            max_payload_bytes=wire.MAX_SYNC_PAYLOAD_BYTES,
            max_concurrency=self.options.max_concurrency,
            releases_instances=False,  # Lambda reclaims idle environments; idling is free
        )

    # -- account, role, bucket (checked before anything is created) ----------------------------

    def _identity(self) -> tuple[str, str]:
        """(account id, partition) of the credentials, checked once."""
        with self._lock:
            if self._account is None:
                try:
                    arn = self._client("sts").get_caller_identity()["Arn"]
                except NoCredentialsError:
                    raise ConfigurationError("aws: no credentials found") from None
                except ClientError as exc:
                    raise ConfigurationError(
                        f"aws: the credentials were refused ({_code(exc)}): {_message(exc)}"
                    ) from None
                except BotoCoreError as exc:
                    raise ConfigurationError(f"aws: cannot reach AWS: {exc}") from None
                _, partition, _, _, account, _ = arn.split(":", 5)
                self._account = (account, partition)
            return self._account

    def _role(self) -> str:
        """The execution role's ARN, required and checked before the first deploy."""
        with self._lock:
            if self._role_arn is not None:
                return self._role_arn
            account, partition = self._identity()
            arn = self.options.role_arn(account, partition)
            if arn is None:
                raise ConfigurationError(
                    "aws: no execution role; pass -o role=ARN (or set DAYDREAM_AWS_ROLE): a role "
                    "Lambda can assume, with logs and S3 access (see docs/aws.md)"
                )
            role_name = arn.rsplit("/", 1)[-1]
            try:
                self._client("iam").get_role(RoleName=role_name)
            except ClientError as exc:
                if _code(exc) == "NoSuchEntity":
                    raise ConfigurationError(
                        f"aws: the execution role {arn} does not exist"
                    ) from None
                # No iam:GetRole permission: Lambda itself checks the role at create time.
            self._role_arn = arn
            return arn

    def _bucket_name(self) -> str:
        if self.options.bucket:
            return self.options.bucket
        account, _ = self._identity()
        return f"daydream-{account}-{self.region}"[:63]

    def _ensure_bucket(self) -> str:
        """Create the private bucket if missing, or check the one given."""
        with self._lock:
            if self._bucket is not None:
                return self._bucket
            name = self._bucket_name()
            s3 = self._s3()
            try:
                s3.head_bucket(Bucket=name)
            except ClientError as exc:
                if _code(exc) in ("403", "AccessDenied", "Forbidden"):
                    raise ConfigurationError(
                        f"aws: bucket {name!r} exists but these credentials cannot use it; "
                        "choose another with -o bucket=NAME"
                    ) from None
                if _code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                    raise ProviderError(f"checking bucket {name!r} failed: {exc}") from None
                self._create_bucket(s3, name)
            else:
                self._check_private(s3, name)
            self._bucket = name
            return name

    def _create_bucket(self, s3: Any, name: str) -> None:
        request: dict[str, Any] = {"Bucket": name}
        if self.region != "us-east-1":
            request["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            s3.create_bucket(**request)
        except ClientError as exc:
            if _code(exc) != "BucketAlreadyOwnedByYou":
                raise ConfigurationError(
                    f"aws: cannot create bucket {name!r} ({_code(exc)}); choose another with "
                    "-o bucket=NAME"
                ) from None
        s3.put_public_access_block(
            Bucket=name,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )
        s3.put_bucket_tagging(
            Bucket=name, Tagging={"TagSet": [{"Key": wire.TAG_MANAGED, "Value": "true"}]}
        )

    def _check_private(self, s3: Any, name: str) -> None:
        try:
            block = s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
        except ClientError:
            block = {}
        if not all(
            block.get(k)
            for k in (
                "BlockPublicAcls",
                "IgnorePublicAcls",
                "BlockPublicPolicy",
                "RestrictPublicBuckets",
            )
        ):
            warnings.warn(
                f"aws: bucket {name!r} does not block public access itself; make sure the "
                "account does (S3 Block Public Access)",
                stacklevel=3,
            )

    def _s3(self) -> Any:
        return s3_client(self.options.endpoint_url, self._session)

    def store(self) -> ObjectStore:
        with self._lock:
            if self._store is None:
                self._store = S3ObjectStore(self._ensure_bucket(), self.options.prefix, self._s3())
            return self._store

    def close(self) -> None:
        """Also ends provisioned concurrency: held capacity is billed until removed."""
        with self._lock:
            held, self._held = list(self._held), {}
        for name in held:
            self._aliases.unprovision(name)
        with self._lock:
            clients = [self._lambda, *self._invoke_clients.values()]
            self._invoke_clients.clear()
        for client in clients:
            client.close()
