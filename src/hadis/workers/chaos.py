"""Chaos options (`hadis serve --chaos ...`): faults on purpose, to rehearse them. Testing
aids only: never in production.

    fail:W        worker W fails every batch (an executor error)
    fail-rate:P   every batch of every worker fails with probability P (seeded)
    hang:W        worker W never finishes a batch (until the watchdog takes it out)

Faults wrap whichever executor the server runs, on whichever backend (a Ray actor applies
them in its own process), so what is rehearsed is the real recovery path.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass

from hadis.errors import HadisError
from hadis.workers.executors import BatchOutput, Executor


class ChaosFailure(HadisError):
    """A fault injected by --chaos."""


@dataclass(frozen=True)
class Chaos:
    fail: frozenset[int] = frozenset()
    hang: frozenset[int] = frozenset()
    fail_rate: float = 0.0
    seed: int = 0

    @classmethod
    def parse(cls, specs: list[str] | tuple[str, ...], seed: int = 0) -> Chaos | None:
        """The chaos of `--chaos` specs; None when there are none."""
        if not specs:
            return None
        fail: set[int] = set()
        hang: set[int] = set()
        rate = 0.0
        for spec in specs:
            kind, _, arg = spec.partition(":")
            if kind not in ("fail", "hang", "fail-rate"):
                raise HadisError(
                    f"unknown chaos {spec!r}; valid: fail:WORKER, fail-rate:P, hang:WORKER"
                )
            try:
                if kind in ("fail", "hang"):
                    wid = int(arg)
                    if wid < 0:
                        raise ValueError
                    (fail if kind == "fail" else hang).add(wid)
                else:
                    rate = float(arg)
                    if not 0 <= rate <= 1:
                        raise ValueError
            except ValueError:
                raise HadisError(
                    f"bad chaos {spec!r}: fail:/hang: take a worker id >= 0, fail-rate: a "
                    "probability in [0, 1]"
                ) from None
        return cls(frozenset(fail), frozenset(hang), rate, seed)

    def wrap(self, executor: Executor, wid: int) -> Executor:
        return ChaosExecutor(executor, wid, self)


class ChaosExecutor:
    """An executor with faults injected per batch (model loads are left alone)."""

    def __init__(self, inner: Executor, wid: int, chaos: Chaos) -> None:
        self.inner = inner
        self.name = inner.name
        self.wid = wid
        self.chaos = chaos
        self._rng = random.Random(chaos.seed * 1_000_003 + wid)
        self._released = threading.Event()

    def load(self, model: str) -> float:
        return self.inner.load(model)

    def generate(
        self, model: str, prompts: list[str], seeds: list[int], size: tuple[int, int]
    ) -> BatchOutput:
        if self.wid in self.chaos.fail:
            raise ChaosFailure(f"chaos: worker {self.wid} fails every batch")
        if self.chaos.fail_rate > 0 and self._rng.random() < self.chaos.fail_rate:
            raise ChaosFailure(f"chaos: a batch of worker {self.wid} failed at random")
        if self.wid in self.chaos.hang:
            # until the worker is killed (a Ray actor's process ends; a thread is released,
            # so that it does not hold the interpreter at exit)
            self._released.wait()
            raise ChaosFailure(f"chaos: worker {self.wid} hung")
        return self.inner.generate(model, prompts, seeds, size)

    def release(self) -> None:
        """The worker was killed: a hung batch ends (its result is ignored)."""
        self._released.set()
