"""Where a worker keeps the models it is not running: on its device beside the active one
while the profile says their weights fit (`Profile.device_memory_gib`,
`ModelVariant.memory_gib`), else in host memory (the last `host_cache`), else nowhere.
The engine (to know what a switch costs) and the executors (to keep the pipelines) follow
this one rule, so what the simulator charges is what a live worker does."""

from __future__ import annotations

from enum import StrEnum

from hadis.profiles import ModelVariant, Profile


class Found(StrEnum):
    """Where a worker found the weights of the model it moved to."""

    ACTIVE = "active"  # the model it ran has the same weights (other steps or guidance)
    DEVICE = "device"  # kept on the device beside the active one: nothing to copy
    HOST = "host"  # kept in host memory: a copy to the device (ModelVariant.reload_s)
    DISK = "disk"  # a load from disk (ModelVariant.load_s)


class Residency:
    """One worker's models, by weights (`ModelVariant.weights`): `device`, those on its
    device, the active one first, then the others, most recently used first; `host`, those
    in host memory, most recent first, at most `host_cache`."""

    def __init__(self, profile: Profile, host_cache: int) -> None:
        self.host_cache = host_cache
        self.budget_gib = profile.device_memory_gib
        self._memory: dict[str, float | None] = {}
        for m in profile.models:  # variants of one set of weights: the largest measured
            known = [x for x in (self._memory.get(m.weights), m.memory_gib) if x is not None]
            self._memory[m.weights] = max(known) if known else None
        self.device: list[str] = []
        self.host: list[str] = []
        self.last: Found | None = None  # where the last move found its model

    def move(self, target: ModelVariant) -> Found:
        """Make `target` the active model and say where its weights were. The models that
        no longer fit on the device beside it (the least recently used first) go to host
        memory, where the oldest beyond `host_cache` are dropped."""
        weights = target.weights
        if self.device and self.device[0] == weights:
            self.last = Found.ACTIVE
            return Found.ACTIVE
        if weights in self.device:
            found = Found.DEVICE
            self.device.remove(weights)
        elif weights in self.host:
            found = Found.HOST
            self.host.remove(weights)
        else:
            found = Found.DISK
        self.device.insert(0, weights)
        while len(self.device) > 1 and not self.fits(self.device):
            self.host.insert(0, self.device.pop())
        del self.host[self.host_cache :]
        self.last = found
        return found

    def fits(self, weights: list[str]) -> bool:
        """These weights fit on the device together (never, where the profile or a model
        measured no memory)."""
        if self.budget_gib is None:
            return False
        total = 0.0
        for w in weights:
            size = self._memory.get(w)
            if size is None:
                return False
            total += size
        return total <= self.budget_gib

    def clear(self) -> None:
        """Nothing kept (a replacement process starts empty)."""
        self.device.clear()
        self.host.clear()


def switch_seconds(found: Found, target: ModelVariant, default_s: float) -> float:
    """Expected seconds to switch to `target` from where its weights were: nothing from
    the device, the profile's reload time from host memory, its load time from disk
    (`default_s` where the profile measured none)."""
    if found in (Found.ACTIVE, Found.DEVICE):
        return 0.0
    return target.switch_s(found is Found.HOST, default_s)
