"""One instance of a function app on the fake: a process running the deployed package.

Run by the fake as a script with ``python -I`` (no user site, no working directory on
``sys.path``), so nothing outside the package and the interpreter's own libraries is
imported. Like the Functions Python worker, it puts the package's root and its
``.python_packages/lib/site-packages`` first on ``sys.path``, imports ``function_app.py`` (the
init: daydream's handler loads the runtime environment) and indexes the ``FunctionApp`` it
defines. It then serves one request at a time from its stdin, each turned into a real
``azure.functions.HttpRequest`` for the indexed function, whose ``HttpResponse`` goes back on
its stdout. Frames are a 4-byte big-endian length and a JSON object.

The fake gives it its envelope as the platform would: ``--cpus`` pins it to its tier's share of
this machine's CPUs, and the instance memory in ``WEBSITE_MEMORY_LIMIT_MB`` becomes its
RLIMIT_AS; ``--faults SPEC`` hands a fault plan to the packaged daydream (tests only: the
fake's own argument, nothing a deployed app carries). ``--index`` only imports and indexes,
printing the functions found (the fake's deployment step, like the host's indexing after a
deployment).
"""

from __future__ import annotations

import base64
import json
import os
import struct
import sys
import traceback
from typing import Any, BinaryIO

SITE_PACKAGES = ".python_packages/lib/site-packages"


def read_frame(stream: BinaryIO) -> Any:
    header = stream.read(4)
    if len(header) < 4:
        raise EOFError
    (size,) = struct.unpack(">I", header)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return json.loads(data)


def write_frame(stream: BinaryIO, value: Any) -> None:
    data = json.dumps(value).encode()
    stream.write(struct.pack(">I", len(data)) + data)
    stream.flush()


def load(root: str, faults: str = "") -> dict[str, Any]:
    """Import the package's function app and index it: {route: (function, methods)}. A fault
    plan's spec (`faults`, tests only) is handed to the packaged daydream before its init."""
    sys.path[0:0] = [root, os.path.join(root, SITE_PACKAGES)]
    if faults:
        from daydream_core import faults as fault_injection

        fault_injection.hand_over(fault_injection.FaultPlan.parse(faults))
    import function_app  # type: ignore[import-not-found]

    functions: dict[str, Any] = {}
    for function in function_app.app.get_functions():
        trigger = function.get_trigger()
        route = getattr(trigger, "route", None) or function.get_function_name()
        methods = [str(getattr(m, "value", m)) for m in (getattr(trigger, "methods", None) or [])]
        functions[route] = (function.get_user_function(), methods, function.get_function_name())
    return functions


def main(argv: list[str]) -> int:
    root = argv[1]
    protocol_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # components may print: keep the protocol pipe apart
    sys.stdout = sys.stderr
    if "--cpus" in argv:  # the instance's CPU share, before any import can start a thread
        os.sched_setaffinity(0, {int(c) for c in argv[argv.index("--cpus") + 1].split(",")})
    memory_mb = os.environ.get("WEBSITE_MEMORY_LIMIT_MB")
    if memory_mb and "--index" not in argv:
        import resource

        limit = int(memory_mb) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        spec = argv[argv.index("--faults") + 1] if "--faults" in argv else ""
        functions = load(root, spec)
    except BaseException as exc:
        write_frame(
            protocol_out,
            {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()},
        )
        return 1
    names = {route: name for route, (_, _, name) in functions.items()}
    write_frame(protocol_out, {"ready": True, "functions": names})
    if "--index" in argv:
        return 0
    import azure.functions as func

    stdin = sys.stdin.buffer
    while True:
        try:
            request = read_frame(stdin)
        except EOFError:
            return 0
        route = request["route"]
        if route not in functions:
            write_frame(protocol_out, {"status": 404, "headers": {}, "body": ""})
            continue
        user_function = functions[route][0]
        http_request = func.HttpRequest(
            request["method"],
            request["url"],
            headers=request["headers"],
            params=request["params"],
            route_params={},
            body=base64.b64decode(request["body"]),
        )
        try:
            response = user_function(http_request)
            answer = {
                "status": response.status_code,
                "headers": {**dict(response.headers), "Content-Type": response.mimetype},
                "body": base64.b64encode(response.get_body()).decode(),
            }
        except BaseException:  # an unhandled exception: the host answers 500
            sys.stderr.write(traceback.format_exc())
            answer = {"status": 500, "headers": {}, "body": ""}
        write_frame(protocol_out, answer)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
