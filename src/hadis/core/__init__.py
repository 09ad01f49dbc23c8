"""The types every layer above the profiles shares, with no heavy dependency (no scipy,
FastAPI or torch): plans and plan requests, queries and why they end, the engine's
commands, its snapshot, the run configuration and a run's summary."""

from hadis.core.commands import Command, Dispatch, LoadModel, may_escalate
from hadis.core.config import ControllerConfig, EngineConfig, RunConfig
from hadis.core.cuts import DiscriminatorCut, RouterCut
from hadis.core.plan import Plan, PlanRequest
from hadis.core.query import (
    DIRECT,
    DROP_ANSWERS,
    DROPPED,
    ESCALATED,
    LIGHT,
    PATHS,
    PENDING,
    SERVED,
    DropAnswer,
    DropReason,
    Query,
)
from hadis.core.snapshot import WORKER_STATES, EngineSnapshot, WorkerView
from hadis.core.summary import RunSummary, WindowSummary

__all__ = [
    "DIRECT",
    "DROPPED",
    "DROP_ANSWERS",
    "ESCALATED",
    "LIGHT",
    "PATHS",
    "PENDING",
    "SERVED",
    "WORKER_STATES",
    "Command",
    "ControllerConfig",
    "Dispatch",
    "DiscriminatorCut",
    "DropAnswer",
    "DropReason",
    "EngineConfig",
    "EngineSnapshot",
    "LoadModel",
    "Plan",
    "PlanRequest",
    "Query",
    "RouterCut",
    "RunConfig",
    "RunSummary",
    "WindowSummary",
    "WorkerView",
    "may_escalate",
]
