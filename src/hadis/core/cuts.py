"""What the engine needs of a router and a discriminator: their cut points only.

The engine never scores: a router's score arrives with the query, a discriminator's comes
back with the batch result. To turn a plan's fractions r and d into thresholds it asks for
quantile cut points, which the scorers (hadis.routing) provide."""

from __future__ import annotations

from typing import Protocol


class RouterCut(Protocol):
    def threshold(self, r: float) -> float:
        """Cut point: a fraction r of reference prompts score strictly above it."""
        ...


class DiscriminatorCut(Protocol):
    def threshold(self, model: str, d: float) -> float:
        """Cut point: a fraction d of the model's reference images score strictly below it."""
        ...
