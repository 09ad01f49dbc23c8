"""Routers and discriminators by name: `--router learned:PATH`, `--discriminator none`.

A router or discriminator is one module: its factory registers under a name (with an
argument after ':' when it needs one, such as a file), and the routing package imports
each of its modules, so a new one is found without touching anything else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hadis.errors import HadisError
from hadis.routing.base import Discriminator, Router

RouterFactory = Callable[[str, int], Router]  # (the argument after ':', seed)
DiscriminatorFactory = Callable[[str, Any, int], Discriminator]  # (argument, profile, seed)

_ROUTERS: dict[str, tuple[RouterFactory, str]] = {}
_DISCRIMINATORS: dict[str, tuple[DiscriminatorFactory, str]] = {}


def register_router(name: str, argument: str = "") -> Callable[[RouterFactory], RouterFactory]:
    """Register a router factory; `argument` names what follows 'name:' (e.g. PATH)."""
    return _registrar(_ROUTERS, name, argument)


def register_discriminator(
    name: str, argument: str = ""
) -> Callable[[DiscriminatorFactory], DiscriminatorFactory]:
    """Register a discriminator factory; `argument` names what follows 'name:'."""
    return _registrar(_DISCRIMINATORS, name, argument)


def router_names() -> list[str]:
    return _names(_ROUTERS)


def discriminator_names() -> list[str]:
    return _names(_DISCRIMINATORS)


def make_router(spec: str, seed: int = 0) -> Router:
    factory, arg = _lookup(_ROUTERS, spec, "router")
    router = factory(arg, seed)
    if not isinstance(getattr(router, "expensive", None), bool):
        raise HadisError(
            f"router {spec!r} must say whether scoring is expensive (a bool attribute "
            "`expensive`: servers run expensive routers off their event loop)"
        )
    return router


def make_discriminator(spec: str, profile: Any, seed: int = 0) -> Discriminator:
    factory, arg = _lookup(_DISCRIMINATORS, spec, "discriminator")
    return factory(arg, profile, seed)


def _registrar(table: dict, name: str, argument: str) -> Callable:
    def deco(factory: Callable) -> Callable:
        if name in table:
            raise ValueError(f"{name!r} is registered twice")
        table[name] = (factory, argument)
        return factory

    return deco


def _names(table: dict) -> list[str]:
    return [f"{n}:{arg}" if arg else n for n, (_, arg) in table.items()]


def _lookup(table: dict, spec: str, what: str) -> tuple[Callable, str]:
    name, sep, arg = spec.partition(":")
    entry = table.get(name)
    if entry is None or bool(sep) != bool(entry[1]) or (sep and not arg):
        raise HadisError(f"unknown {what} {spec!r}; valid: {', '.join(_names(table))}")
    return entry[0], arg
