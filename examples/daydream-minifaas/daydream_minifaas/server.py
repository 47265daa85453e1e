"""minifaas's HTTP API (JSON), and the `minifaas` command that serves it.

    GET    /                               the platform: CPUs, instance limit, billing rule
    GET    /functions                      {"functions": [{"name", "labels"}, ...]}
    PUT    /functions/NAME                 create or replace: {"handler", "memory_mb", "cpus",
                                           "environment", "labels"}
    GET    /functions/NAME                 its configuration (404 if none)
    DELETE /functions/NAME                 delete it and stop its instances
    POST   /functions/NAME/invoke          {"event", "timeout_s"} → the result and its bill
    POST   /functions/NAME/provision       {"count"} → the instances started, with their bills
    GET    /functions/NAME/instances       {"instances": [id, ...]} alive now
    POST   /functions/NAME/release         {"keep"} → the idle instances stopped

Errors are ``{"error": message}`` with 400, 404, 413, 429 (every instance busy), 502 (the
instance failed) or 504 (the request ran past its timeout).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from daydream_minifaas.platform import Platform, PlatformError

MAX_REQUEST_BYTES = 32 * 2**20
_ROUTE = re.compile(r"^/functions(?:/([A-Za-z0-9._-]{1,128})(?:/([a-z]+))?)?$")


class _Handler(BaseHTTPRequestHandler):
    platform: Platform  # set on the server's subclass
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet, as a daemon
        pass

    def _answer(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _serve(self, method: str) -> None:
        size = int(self.headers.get("Content-Length") or 0)
        if size > MAX_REQUEST_BYTES:
            self.close_connection = True
            return self._answer(413, {"error": f"requests are limited to {MAX_REQUEST_BYTES} B"})
        try:
            body = json.loads(self.rfile.read(size) or b"{}")
            self._answer(200, self._route(method, body))
        except PlatformError as exc:
            self._answer(exc.status, {"error": str(exc)})
        except (ValueError, KeyError, TypeError) as exc:
            self._answer(400, {"error": f"bad request: {exc}"})

    def _route(self, method: str, body: dict[str, Any]) -> Any:
        platform = self.platform
        if self.path == "/" and method == "GET":
            return {
                "platform": "minifaas",
                "cpus": len(platform.host_cpus),
                "max_instances": platform.max_instances,
                "max_request_bytes": MAX_REQUEST_BYTES,
                "billing": {"granularity_ms": 1, "init_billed": True},
            }
        match = _ROUTE.match(self.path)
        if match is None:
            raise PlatformError(404, f"no route {method} {self.path}")
        name, action = match.groups()
        if name is None and method == "GET":
            functions = sorted(platform.functions.items())
            return {"functions": [{"name": n, "labels": f.labels} for n, f in functions]}
        if action is None and method == "PUT":
            return platform.put(name, body).config()
        if action is None and method == "GET":
            return platform.get(name).config()
        if action is None and method == "DELETE":
            platform.delete(name)
            return {"deleted": name}
        if action == "invoke" and method == "POST":
            return platform.invoke(name, body["event"], float(body["timeout_s"]))
        if action == "provision" and method == "POST":
            return {"started": [asdict(b) for b in platform.provision(name, int(body["count"]))]}
        if action == "instances" and method == "GET":
            return {"instances": platform.live(name)}
        if action == "release" and method == "POST":
            return {"stopped": platform.release(name, int(body["keep"]))}
        raise PlatformError(404, f"no route {method} {self.path}")

    def do_GET(self) -> None:
        self._serve("GET")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_DELETE(self) -> None:
        self._serve("DELETE")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the listen backlog: a burst of invocations must not be reset


@contextmanager
def serving(platform: Platform, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve `platform` in a thread; yield its URL; stop it and its instances on exit."""
    handler = type("Handler", (_Handler,), {"platform": platform})
    server = _Server((host, port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        platform.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="minifaas", description="Serve minifaas.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--state-dir", type=Path, default=Path.home() / ".minifaas")
    parser.add_argument("--max-instances", type=int, default=32)
    parser.add_argument(
        "--keep-alive", type=float, default=60.0, help="seconds an idle instance is kept"
    )
    args = parser.parse_args(argv)
    platform = Platform(
        args.state_dir, max_instances=args.max_instances, keep_alive_s=args.keep_alive
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # so that its instances stop too
    with serving(platform, args.host, args.port) as url:
        print(f"minifaas serving on {url} (Ctrl-C stops it and its instances)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
