"""Workflow (app) registrations: loaded lazily, so listing apps imports no science stack."""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from daydream_core.workflow import Workflow


@dataclass(frozen=True)
class AppSpec:
    """An app plugin's registration: its name and where its `Workflow` object lives."""

    name: str
    description: str
    target: str  # "module:attribute"

    def load(self) -> Workflow:
        module_name, _, attribute = self.target.partition(":")
        workflow = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(workflow, Workflow):
            raise TypeError(f"{self.target} is not a daydream Workflow")
        return workflow
