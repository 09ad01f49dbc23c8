"""A registry of factories by name: what makes a new executor or backend one file (its
module registers its factory with a decorator; the package imports every module)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from hadis.errors import HadisError

F = TypeVar("F", bound=Callable)


class Registry(Generic[F]):
    def __init__(self, kind: str) -> None:
        self.kind = kind  # e.g. "executor", in messages
        self._factories: dict[str, F] = {}

    def register(self, name: str) -> Callable[[F], F]:
        def deco(factory: F) -> F:
            if name in self._factories:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._factories[name] = factory
            return factory

        return deco

    def unregister(self, name: str) -> None:
        """Forget a factory (tests that register their own)."""
        self._factories.pop(name, None)

    def names(self) -> list[str]:
        return list(self._factories)

    def get(self, name: str) -> F:
        factory = self._factories.get(name)
        if factory is None:
            valid = ", ".join(self._factories)
            raise HadisError(f"unknown {self.kind} {name!r}; valid: {valid}")
        return factory
