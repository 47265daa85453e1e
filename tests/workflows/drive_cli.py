"""``python drive_cli.py ARGS``: the daydream command with the tests' workflows installed
(`demo`, `slow`, `steps`), as a separate process that can be signalled or killed."""

from __future__ import annotations

import sys

from daydream_core import plugins
from daydream_core.apps import AppSpec
from daydream_core.cli import main
from daydream_core.hookspecs import hookimpl


class TestApps:
    @hookimpl
    def daydream_apps(self) -> list[AppSpec]:
        return [
            AppSpec("demo", "a small test workflow", "demo_workflow:workflow"),
            AppSpec("slow", "one phase of busy instances", "slow_workflow:workflow"),
            AppSpec("steps", "phases that can be held at a gate", "steps_workflow:workflow"),
        ]


if __name__ == "__main__":
    plugins.plugin_manager().register(TestApps())
    main(sys.argv[1:])
