"""The pytest hook a provider plugin implements to run the suite against its own fake."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from daydream_conformance.environment import ConformanceEnvironment


@pytest.hookspec(firstresult=True)
def pytest_daydream_conformance_environment(
    config: pytest.Config, provider: str, workdir: Path
) -> AbstractContextManager[ConformanceEnvironment] | None:
    """Return a context manager that sets up where `provider` runs for the suite, or None.

    The first non-None answer wins. Entering it starts whatever the provider needs offline
    (a fake endpoint on 127.0.0.1, credentials, ...) and yields a `ConformanceEnvironment`;
    exiting it tears everything down. Answer None for providers that are not yours.
    """
