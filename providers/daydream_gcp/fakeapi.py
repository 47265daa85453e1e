"""The fake's HTTP front: routes the v2 REST API, the metadata server and function URLs to
`daydream_gcp.testing.FunctionsFake`. HTTP/1.1 with keep-alive, so every request body is read
in full before anything is answered."""

from __future__ import annotations

import json
import re
import time
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from daydream_gcp.fakerules import error, not_found

if TYPE_CHECKING:
    from daydream_gcp.testing import FunctionsFake

_LOCATION = r"/v2/projects/(?P<project>[^/]+)/locations/(?P<region>[^/:]+)"
_ROUTES = [
    ("POST", re.compile(_LOCATION + r"/functions$"), "create"),
    ("POST", re.compile(_LOCATION + r"/functions:generateUploadUrl$"), "upload_url"),
    ("GET", re.compile(_LOCATION + r"/functions$"), "list"),
    ("GET", re.compile(_LOCATION + r"/functions/(?P<id>[^/:]+)$"), "get"),
    ("PATCH", re.compile(_LOCATION + r"/functions/(?P<id>[^/:]+)$"), "patch"),
    ("DELETE", re.compile(_LOCATION + r"/functions/(?P<id>[^/:]+)$"), "delete"),
    ("GET", re.compile(_LOCATION + r"/operations/(?P<op>[^/:]+)$"), "operation"),
]
_FUNCTION_URL = re.compile(r"^/fn/(?P<project>[^/]+)/(?P<region>[^/]+)/(?P<id>[^/?]+)")
_SERVICE_ACCOUNT = "/computeMetadata/v1/instance/service-accounts/default"
_EMAIL = "daydream-fake@daydream-fake-project.iam.gserviceaccount.com"


class FakeRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: FunctionsFake

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if self.path.startswith("/computeMetadata") or self.path == "/":
            self.send_header("Metadata-Flavor", "Google")
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the caller gave up (its timeout)
            self.close_connection = True

    def _json(self, status: int, value: Any) -> None:
        self._send(status, json.dumps(value).encode())

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        body = self._body()  # always read in full: the connection is kept alive
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        if parts.path == "/" or parts.path.startswith("/computeMetadata/"):
            self._metadata(parts.path, query)
            return
        url = _FUNCTION_URL.match(parts.path)
        if url and method == "POST":
            auth = self.headers.get("Authorization", "")
            token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else None
            status, answer = self.fake.invoke(url["id"], token, body)
            self._send(status, answer)
            return
        for verb, pattern, action in _ROUTES:
            match = pattern.match(parts.path)
            if match and verb == method:
                if (match["project"], match["region"]) != (self.fake.project, self.fake.region):
                    self._json(403, error(403, "PERMISSION_DENIED", "Permission denied"))
                    return
                self._api(action, match.groupdict(), query, body)
                return
        self._json(404, error(404, "NOT_FOUND", f"no route for {method} {parts.path}"))

    def _api(
        self, action: str, path: dict[str, str], query: dict[str, list[str]], body: bytes
    ) -> None:
        # The function service's calls carry $alt; the operations client's polls do not.
        if action != "operation" and query.get("$alt") != ["json;enum-encoding=int"]:
            self._json(400, error(400, "INVALID_ARGUMENT", "expected $alt=json;enum-encoding=int"))
            return
        try:
            request = json.loads(body) if body else {}
        except ValueError:
            self._json(400, error(400, "INVALID_ARGUMENT", "the body is not JSON"))
            return
        fake = self.fake
        if action == "create":
            status, answer = fake.create((query.get("functionId") or [""])[0], request)
        elif action == "upload_url":
            status, answer = 200, fake.generate_upload_url()
        elif action == "list":
            status, answer = 200, {"functions": fake.list()}
        elif action == "get":
            found = fake.get(path["id"])
            name = f"{fake.parent()}/functions/{path['id']}"
            status, answer = (200, found) if found else (404, not_found(name))
        elif action == "patch":
            mask = [p for m in query.get("updateMask", []) for p in m.split(",") if p]
            status, answer = fake.update(path["id"], request, mask)
        elif action == "delete":
            status, answer = fake.delete(path["id"])
        else:
            name = f"{fake.parent()}/operations/{path['op']}"
            found = fake.poll(name)
            status, answer = (200, found) if found else (404, not_found(name))
        self._json(status, answer)

    def _metadata(self, path: str, query: dict[str, list[str]]) -> None:
        """The caller's own metadata server: what google-auth asks for on Google Cloud."""
        if self.headers.get("Metadata-Flavor") != "Google":
            self._send(403, b"Missing Metadata-Flavor:Google header.", "text/plain")
            return
        if path == "/":
            self._send(200, b"ok", "application/text")
        elif path == "/computeMetadata/v1/project/project-id":
            self._send(200, self.fake.project.encode(), "application/text")
        elif path == "/computeMetadata/v1/universe/universe-domain":
            self._send(200, b"googleapis.com", "application/text")
        elif path.rstrip("/") == _SERVICE_ACCOUNT:
            scopes = ["https://www.googleapis.com/auth/cloud-platform"]
            self._json(200, {"email": _EMAIL, "scopes": scopes, "aliases": ["default"]})
        elif path == f"{_SERVICE_ACCOUNT}/token":
            token = f"fake-access-token-{int(time.time())}"
            self._json(200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"})
        elif path == f"{_SERVICE_ACCOUNT}/identity":
            audience = (query.get("audience") or [""])[0]
            self._send(200, self.fake.identity_token(audience).encode(), "application/text")
        else:
            self._send(404, b"not found", "text/plain")
