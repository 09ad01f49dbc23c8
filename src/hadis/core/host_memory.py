"""Which models a worker keeps in host memory: the engine (to know what a switch costs)
and the executors (to keep the pipelines) follow the same rule."""

from __future__ import annotations


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
