"""The clock-agnostic data plane shared by the simulator and the server."""

from hadis.core.commands import Command, Dispatch, LoadModel
from hadis.core.config import ControllerConfig, EngineConfig
from hadis.core.query import DIRECT, DROPPED, ESCALATED, LIGHT, SERVED, DropReason, Query
from hadis.engine.controller import Controller
from hadis.engine.engine import Engine, EngineListener, NullListener
from hadis.engine.metrics import MetricsRecorder, summarize
from hadis.engine.quality import QualityTable

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
    "LoadModel",
    "MetricsRecorder",
    "NullListener",
    "QualityTable",
    "Query",
    "summarize",
]
