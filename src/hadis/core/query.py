"""The per-query record, its paths and outcomes, and the typed reason a query ended without
an image (with the one table that maps each reason to an HTTP answer)."""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

# Paths a query takes (strings: cheap to compare, readable in CSV/JSON).
LIGHT = "light"  # light model only (also: any single-model plan)
DIRECT = "direct-heavy"  # router sent it straight to the heavy model
ESCALATED = "escalated"  # light image rejected by the discriminator, re-generated on heavy
PATHS = (LIGHT, DIRECT, ESCALATED)

# Outcomes.
PENDING = "pending"
SERVED = "served"
DROPPED = "dropped"


class DropReason(StrEnum):
    """Why a query ended without an image (its value is what CSV files and logs show)."""

    LATE = "late"  # would finish after drop_factor x SLO: dropped rather than served late
    CANCELLED = "cancelled"  # its client gave up (deadline passed, connection closed)
    SHUTDOWN = "shutdown"  # the server stopped with it queued
    UNFINISHED = "unfinished"  # still queued when a simulation ended
    FAILED = "generation failed"  # the executor raised (drop_detail says what)
    HTTP_ERROR = "http error"  # `hadis load`: the server answered with an error status


class DropAnswer(NamedTuple):
    """How a query that ended without an image answers its request."""

    status: int  # HTTP status
    type: str  # OpenAI error type
    code: str  # OpenAI error code
    outcome: str  # the request's outcome label in the metrics
    message: str


# One row per DropReason (a test checks every reason has one).
DROP_ANSWERS: dict[DropReason, DropAnswer] = {
    DropReason.LATE: DropAnswer(
        504, "timeout", "deadline_exceeded", "timeout",
        "the request could not be served within its deadline (late)",
    ),
    DropReason.CANCELLED: DropAnswer(
        499, "invalid_request_error", "cancelled", "disconnected", "the request was cancelled"
    ),
    DropReason.SHUTDOWN: DropAnswer(
        503, "service_unavailable", "shutdown", "shutdown", "the server is shutting down"
    ),
    DropReason.UNFINISHED: DropAnswer(
        503, "service_unavailable", "shutdown", "shutdown", "the server is shutting down"
    ),
    DropReason.FAILED: DropAnswer(
        500, "server_error", "generation_failed", "error", "generation failed"
    ),
    DropReason.HTTP_ERROR: DropAnswer(
        502, "server_error", "upstream_error", "error", "upstream error"
    ),
}  # fmt: skip


class Query:
    """One request as the engine tracks it. Times are seconds on the driver's clock.

    pair: (light, heavy) of the plan that routed it, or (model,) for a single model; the
    metrics map each pair's realised mix of paths to the profile's quality table.
    """

    __slots__ = (
        "qid",
        "arrival_s",
        "prompt_id",
        "prompt",
        "image_seed",
        "router_score",
        "pair",
        "path",
        "model",
        "start_s",
        "finish_s",
        "status",
        "drop_reason",
        "drop_detail",
        "failures",
        "confidence",
        "user",
        "pinned",
        "image",
    )

    def __init__(
        self,
        qid: int,
        arrival_s: float,
        prompt_id: int | None = None,
        prompt: str | None = None,
        image_seed: int = 0,
        pinned: str | None = None,
        router_score: float | None = None,
    ) -> None:
        self.qid = qid
        self.arrival_s = arrival_s
        self.prompt_id = prompt_id
        self.prompt = prompt
        self.image_seed = image_seed
        # the driver's router score: required when the plan routes by score (it may score a
        # whole trace ahead); the engine never scores
        self.router_score = router_score
        self.pair: tuple[str, ...] = ()
        self.path = LIGHT
        self.model = ""  # model of the stage it is queued for / last ran on
        self.start_s: float | None = None
        self.finish_s: float | None = None
        self.status = PENDING
        self.drop_reason: DropReason | None = None
        self.drop_detail = ""  # e.g. the executor's error message
        self.failures = 0  # batches of it that failed (it is retried up to max_retries)
        self.confidence: float | None = None
        self.user: object = None  # the driver's own handle (e.g. a future in the server)
        self.pinned = pinned  # a model the client asked for: no routing, no escalation
        self.image: bytes | None = None  # the last generated image, when the driver has one

    def __repr__(self) -> str:
        return f"Query({self.qid}, t={self.arrival_s:.3f}, {self.path}, {self.status})"
