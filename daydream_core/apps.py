"""Workflow (app) registrations: loaded lazily, so listing apps imports no science stack."""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from daydream_core.errors import UsageError
from daydream_core.requirements import install_hint, missing_modules
from daydream_core.workflow import Workflow


@dataclass(frozen=True)
class AppSpec:
    """An app plugin's registration: its name, where its `Workflow` object lives, and the
    optional modules it needs with the extra that installs them."""

    name: str
    description: str
    target: str  # "module:attribute"
    requires: tuple[str, ...] = ()
    extra: str | None = None

    def missing(self) -> list[str]:
        """The required modules not installed here (nothing is imported to find out)."""
        return missing_modules(self.requires)

    def load(self) -> Workflow:
        """The workflow; a missing dependency is a one-line `UsageError` naming the extra."""
        what = f"app {self.name!r}"
        if missing := self.missing():
            raise UsageError(install_hint(what, missing, self.extra))
        module_name, _, attribute = self.target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name is None or exc.name.partition(".")[0] == module_name.partition(".")[0]:
                raise
            raise UsageError(install_hint(what, [exc.name], self.extra)) from None
        workflow = getattr(module, attribute)
        if not isinstance(workflow, Workflow):
            raise TypeError(f"{self.target} is not a daydream Workflow")
        return workflow
