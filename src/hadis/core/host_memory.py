"""Which models a worker keeps in host memory: the engine (to know what a switch costs)
and the executors (to keep the pipelines) follow the same rule."""

from __future__ import annotations

from hadis.profiles import ModelVariant


def switch_in_host(host: list[str], leaving: str | None, target: str, capacity: int) -> bool:
    """A worker moves from `leaving` to `target`: update `host` (most recent first, at most
    `capacity` models) and say whether `target` was there (a reload, not a load)."""
    was_there = target in host
    if was_there:
        host.remove(target)
    if leaving is not None and leaving != target:
        host.insert(0, leaving)
    del host[capacity:]
    return was_there


def switch_seconds(
    host: list[str],
    leaving: ModelVariant | None,
    target: ModelVariant,
    capacity: int,
    default_s: float,
) -> float:
    """Expected seconds for a worker to move from `leaving` to `target`, updating `host`:
    nothing when both are variants of the same weights (other steps or guidance: the
    executors reuse the pipeline), the profile's reload time when `target` is in host
    memory, else its load time (`default_s` where the profile has none)."""
    if leaving is not None and leaving.weights == target.weights:
        return 0.0
    name = leaving.name if leaving is not None else None
    in_host = switch_in_host(host, name, target.name, capacity)
    return target.switch_s(in_host, default_s)
