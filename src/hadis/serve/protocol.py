"""What the HTTP layer needs of the service behind it: submit, cancel, snapshot (and the
lifecycle). LiveService (serve/service.py) is the one implementation; another driver, in
this process or behind a network hop, is another."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from hadis.core import Plan
from hadis.profiles import Profile
from hadis.serve.admission import Rejected
from hadis.serve.listener import ServiceListener
from hadis.serve.service import ServeConfig, ServiceSnapshot


class ImageService(Protocol):
    profile: Profile
    config: ServeConfig
    listeners: list[ServiceListener]
    ready: bool  # the first models are loaded

    @property
    def plan(self) -> Plan | None:
        """The plan in force."""
        ...

    async def start(self) -> None: ...

    async def stop(self) -> None:
        """Stop; every request still queued ends with an explicit error."""
        ...

    def admit(self, n: int) -> None:
        """Raise Rejected when n more queries cannot be taken at all (queue full)."""
        ...

    async def score(self, prompt: str) -> float:
        """The prompt's router score (submitted with its queries)."""
        ...

    def submit(
        self,
        prompt: str,
        n: int,
        size: tuple[int, int],
        seed: int | None,
        model: str | None,
        router_score: float | None = None,
    ) -> list[asyncio.Future]:
        """Queue n queries; each future resolves to an Outcome (None at shutdown). Raises
        Rejected when their path cannot meet the SLO."""
        ...

    def cancel(self, futures: list[asyncio.Future]) -> int:
        """The client gave up: free the queue slots of these futures' queries."""
        ...

    def snapshot(self) -> ServiceSnapshot: ...

    def info(self) -> dict[str, Any]:
        """What runs (profile, policy, router, discriminator, executor, backend...)."""
        ...

    def retry_after_real_s(self, err: Rejected) -> int: ...
