"""minifaas's language runtime: the process that is one instance of a function.

The platform starts ``python -m daydream_minifaas.runtime`` with the function's environment
variables and its own ``MINIFAAS_*`` ones. The runtime caps its memory and pins its CPUs
first (before an import can start a thread), then imports the function's handler module:
that import is the instance's init. It then answers one request per line on stdin with one
line on stdout: ``{"event", "context"}`` in, ``{"result", "max_memory_mb"}`` out (``{"error"}``
with the traceback when the handler raised).
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import sys
import traceback


def main() -> int:
    memory_mb = int(os.environ["MINIFAAS_MEMORY_MB"])
    limit = memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    os.sched_setaffinity(0, [int(cpu) for cpu in os.environ["MINIFAAS_CPUS"].split(",")])
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    sys.stdout = sys.stderr  # what the function prints goes to the instance's log
    try:
        handler = importlib.import_module(os.environ["MINIFAAS_HANDLER"])
    except BaseException:
        replies.write(json.dumps({"ready": False, "traceback": traceback.format_exc()}) + "\n")
        return 1
    replies.write(json.dumps({"ready": True}) + "\n")
    replies.flush()
    for line in sys.stdin:
        request = json.loads(line)
        try:
            reply = {"result": handler.handle(request["event"], request["context"])}
        except Exception:
            reply = {"error": traceback.format_exc()}
        reply["max_memory_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        replies.write(json.dumps(reply) + "\n")
        replies.flush()
    return 0  # the platform closed stdin: the instance is stopped


if __name__ == "__main__":
    sys.exit(main())
