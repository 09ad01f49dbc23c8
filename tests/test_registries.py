"""Routers, discriminators and executors are found by name through registries (a new one
is one module that registers itself)."""

from __future__ import annotations

import pytest

from hadis.errors import HadisError
from hadis.routing import registry
from hadis.routing.simple import RandomRouter
from hadis.workers import executors


def test_builtin_names_and_clear_errors() -> None:
    assert set(registry.router_names()) == {"reference", "online", "learned:PATH", "random", "none"}
    assert set(registry.discriminator_names()) == {"reference", "trained:PATH", "random", "none"}
    assert set(executors.executor_names()) == {"diffusers", "profile", "instant"}
    with pytest.raises(HadisError, match="unknown router 'nope'; valid: .*learned:PATH"):
        registry.make_router("nope")
    for spec in ("learned", "learned:", "random:x"):  # a path where one is needed, only there
        with pytest.raises(HadisError, match="unknown router"):
            registry.make_router(spec)
    with pytest.raises(HadisError, match="unknown executor 'gpu'; valid: diffusers"):
        executors.make_executor_factory("gpu", None)
    from hadis.workers import base as workers

    assert set(workers.backend_names()) == {"local", "ray"}
    with pytest.raises(HadisError, match="unknown backend 'k8s'; valid: local, ray"):
        workers.make_backend("k8s", None)  # type: ignore[arg-type]


def test_a_new_router_and_executor_register_by_name(paper_profile) -> None:
    @registry.register_router("test-half", argument="SEED")
    def _half(arg: str, seed: int) -> RandomRouter:
        return RandomRouter(int(arg))

    @executors.register_executor("test-instant")
    def _fast(settings: executors.ExecutorSettings):
        assert settings.profile is paper_profile and settings.time_scale == 0.5
        return executors.InstantExecutor

    try:
        router = registry.make_router("test-half:7")
        assert router.score(None, "a cat") == RandomRouter(7).score(None, "a cat")
        assert "test-half:SEED" in registry.router_names()
        make = executors.make_executor_factory("test-instant", paper_profile, time_scale=0.5)
        batch = make().generate("sd35-large", ["a cat"], [0], (16, 16))
        assert len(batch.images) == 1
    finally:
        registry._ROUTERS.pop("test-half", None)
        executors._EXECUTORS.unregister("test-instant")


def test_a_router_must_say_whether_it_is_expensive() -> None:
    class Bare:
        name = "bare"

        def score(self, prompt_id, prompt=None):
            return 0.0

        def threshold(self, r):
            return 0.0

    registry.register_router("test-bare")(lambda arg, seed: Bare())
    try:
        with pytest.raises(HadisError, match="must say whether scoring is expensive"):
            registry.make_router("test-bare")
    finally:
        registry._ROUTERS.pop("test-bare", None)
