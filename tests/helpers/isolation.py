"""What every test runs under: no network, W&B disabled and quiet. Fixtures wider than a test (a session's or a
module's trained run) apply it themselves: they are set up before the per-test autouse fixtures of conftest."""

from __future__ import annotations

import urllib.request
from urllib.error import URLError

import pytest


def refuse_network(*args: object, **kwargs: object) -> None:
    raise URLError("network disabled in tests")


def isolate(patch: pytest.MonkeyPatch) -> None:
    """A download attempt fails at once, as on an offline machine; W&B neither syncs nor prints."""
    patch.setattr(urllib.request, "urlopen", refuse_network)
    patch.setenv("WANDB_MODE", "disabled")
    patch.setenv("WANDB_SILENT", "true")
