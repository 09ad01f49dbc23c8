"""What the engine asks its driver to do. Each command says everything a driver needs to
carry it out, whatever its clock: the simulator charges the expected time, the server does
the work and reports back when it is done."""

from __future__ import annotations

from dataclasses import dataclass

from hadis.core.query import LIGHT, Query


def may_escalate(q: Query) -> bool:
    """The escalation rule's per-query half: a light-path query that no client pinned to a
    model may be re-generated on heavy (the plan decides whether its batch escalates)."""
    return q.path == LIGHT and q.pinned is None


@dataclass(slots=True)
class Dispatch:
    """Run `queries` as one batch of model `model` on worker `worker` now, then call
    `Engine.batch_done(now, worker, confidences)`.

    score: the plan escalates this model's images, so the driver has the discriminator
    score those of `scored()` (on the worker, where the images are) and hands the
    confidences back with the result."""

    worker: int
    model: str
    queries: list[Query]
    score: bool = False

    def scored(self) -> list[bool]:
        """Per query: whether its image must be scored."""
        if not self.score:
            return [False] * len(self.queries)
        return [may_escalate(q) for q in self.queries]


@dataclass(slots=True)
class LoadModel:
    """Load `model` on worker `worker` (the plan moved it), then call
    `Engine.worker_ready(now, worker)`. The worker serves nothing meanwhile.

    expected_s: how long the switch is expected to take (the configured switch delay); a
    simulated driver charges exactly this, a live one takes what the load takes."""

    worker: int
    model: str
    expected_s: float


Command = Dispatch | LoadModel
