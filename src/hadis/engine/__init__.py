"""The clock-agnostic data plane shared by the simulator and the server."""

from hadis.engine.controller import Controller, ControllerConfig
from hadis.engine.engine import Engine, EngineConfig, EngineListener, NullListener
from hadis.engine.metrics import MetricsRecorder, summarize
from hadis.engine.quality import QualityTable
from hadis.engine.query import (
    DIRECT,
    DROPPED,
    ESCALATED,
    LIGHT,
    SERVED,
    Command,
    Dispatch,
    DropReason,
    Query,
    WakeUp,
)

__all__ = [
    "DIRECT",
    "DROPPED",
    "ESCALATED",
    "LIGHT",
    "SERVED",
    "Command",
    "Controller",
    "ControllerConfig",
    "Dispatch",
    "DropReason",
    "Engine",
    "EngineConfig",
    "EngineListener",
    "MetricsRecorder",
    "NullListener",
    "QualityTable",
    "Query",
    "WakeUp",
    "summarize",
]
