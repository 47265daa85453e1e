"""Credentials: Application Default Credentials for the APIs, ID tokens for the functions.

Calling a function's URL needs an ID token whose audience is that URL (Cloud Run checks it
against ``roles/run.invoker``). google-auth mints one from a service account key, an
impersonated or external account, or the metadata server; for a user's own ADC (``gcloud
auth application-default login``) the refreshed user credentials carry an ID token that
Cloud Run accepts as well. Tokens are cached per audience until shortly before they expire.
"""

from __future__ import annotations

import threading
from typing import Any

from daydream_core.errors import ConfigurationError

CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
NO_CREDENTIALS = (
    "gcp: no credentials found; run `gcloud auth application-default login`, or set "
    "GOOGLE_APPLICATION_CREDENTIALS to a service account key file"
)


def default_credentials() -> tuple[Any, str | None]:
    """(credentials, their project or None) from Application Default Credentials."""
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    try:
        credentials, project = google.auth.default(scopes=[CLOUD_PLATFORM])
    except DefaultCredentialsError:
        raise ConfigurationError(NO_CREDENTIALS) from None
    return credentials, project


class IdTokens:
    """ID tokens for function URLs, minted from the same credentials, cached per audience."""

    def __init__(self, credentials: Any) -> None:
        self._credentials = credentials
        self._by_audience: dict[str, Any] = {}
        self._lock = threading.Lock()

    def token(self, audience: str) -> str:
        import google.auth.transport.requests

        with self._lock:
            credentials = self._by_audience.get(audience)
            if credentials is None:
                credentials = self._for(audience)
                self._by_audience[audience] = credentials
            if not credentials.valid:
                credentials.refresh(google.auth.transport.requests.Request())
            token = getattr(credentials, "id_token", None) or credentials.token
        if not token:
            raise ConfigurationError(
                "gcp: these credentials give no ID token to call functions with; use a "
                "service account (GOOGLE_APPLICATION_CREDENTIALS or impersonation)"
            )
        return str(token)

    def _for(self, audience: str) -> Any:
        import google.auth.transport.requests
        import google.oauth2.credentials
        import google.oauth2.id_token
        from google.auth.exceptions import DefaultCredentialsError, RefreshError

        request = google.auth.transport.requests.Request()
        try:
            return google.oauth2.id_token.fetch_id_token_credentials(  # type: ignore[no-untyped-call]
                audience, request=request
            )
        except DefaultCredentialsError:
            pass
        except RefreshError as exc:
            raise ConfigurationError(
                f"gcp: cannot mint an ID token for {audience}: {exc}"
            ) from None
        if isinstance(self._credentials, google.oauth2.credentials.Credentials):
            return _UserIdToken(self._credentials)
        raise ConfigurationError(
            "gcp: cannot mint ID tokens to call functions with these credentials; set "
            "GOOGLE_APPLICATION_CREDENTIALS to a service account key, or run on Google Cloud"
        )


class _UserIdToken:
    """A user's ADC as ID-token credentials: the ID token that comes with each refresh."""

    def __init__(self, credentials: Any) -> None:
        self._credentials = credentials

    @property
    def valid(self) -> bool:
        return bool(self._credentials.valid and self._credentials.id_token)

    @property
    def id_token(self) -> str | None:
        token: str | None = self._credentials.id_token
        return token

    @property
    def token(self) -> str | None:
        return self.id_token

    def refresh(self, request: Any) -> None:
        self._credentials.refresh(request)
