"""Traces: arrival times (seconds from the start) with optional prompt ids or texts.

CSV format: a header with `arrival_s` (seconds from the start) or `timestamp` (ISO 8601
date-time, converted relative to the first row), and optionally `prompt_id` (index into the
reference prompt set) and/or `prompt` (text). Rows need not be sorted. Missing prompt ids
are drawn uniformly with the seed.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path

import numpy as np

from hadis.errors import HadisError
from hadis.routing.reference import reference_prompt_id
from hadis.textfiles import parse_float, parse_int, read_csv

N_REFERENCE_PROMPTS = 5000
MAX_TRACE_QUERIES = 20_000_000  # generators refuse larger traces (memory: ~0.5 GB)
MAX_TRACE_SPAN_S = 1e9  # ~31.7 years: beyond it float seconds lose sub-second resolution
MAX_BURST_PERIODS = 1_000_000  # burst/calm alternations one bursty trace may hold


@dataclass(frozen=True)
class Trace:
    arrival_s: np.ndarray  # float64, ascending
    prompt_id: np.ndarray  # int64, -1 where unknown (the prompt text is given instead)
    prompt: tuple[str | None, ...] | None = None
    name: str = "trace"

    def __post_init__(self) -> None:
        if len(self.arrival_s) != len(self.prompt_id):
            raise HadisError("trace arrays differ in length")
        if len(self.arrival_s) and np.any(np.diff(self.arrival_s) < 0):
            raise HadisError("trace arrival times must be sorted")
        if len(self.arrival_s) and self.arrival_s[-1] > MAX_TRACE_SPAN_S:
            raise HadisError(
                f"trace spans {self.arrival_s[-1]:.3g} s, more than the {MAX_TRACE_SPAN_S:.0e} s "
                "(~31 years) a trace may span"
            )

    def __len__(self) -> int:
        return len(self.arrival_s)

    @property
    def duration_s(self) -> float:
        return float(self.arrival_s[-1]) if len(self) else 0.0

    def with_mean_rate(self, qps: float) -> Trace:
        """The same queries, time-stretched so that the mean rate over the trace is `qps`
        (the burst shape and the query count are kept)."""
        if not (qps > 0 and np.isfinite(qps)):
            raise HadisError(f"--qps for a trace file must be a rate > 0, got {qps}")
        if len(self) < 2 or self.duration_s <= 0:
            raise HadisError("a trace needs two distinct arrival times to be rescaled")
        factor = (len(self) / self.duration_s) / qps
        return Trace(self.arrival_s * factor, self.prompt_id, self.prompt, self.name)

    def until(self, end_s: float) -> Trace:
        """The arrivals before `end_s` (a shorter run of the same trace)."""
        n = int(np.searchsorted(self.arrival_s, end_s))
        prompts = self.prompt[:n] if self.prompt is not None else None
        return Trace(self.arrival_s[:n], self.prompt_id[:n], prompts, self.name)


def _draw_prompts(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, N_REFERENCE_PROMPTS, size=n)


def _poisson_points(rates: np.ndarray, point_s: float, rng: np.random.Generator) -> np.ndarray:
    """Poisson arrivals inside each point of constant rate; nothing spills over."""
    counts = rng.poisson(rates * point_s)
    starts = np.repeat(np.arange(len(rates)) * point_s, counts)
    return np.sort(starts + rng.uniform(0, point_s, size=counts.sum()))


def azure_functions_shape() -> np.ndarray:
    """The 347 hourly invocation counts of the bundled Azure Functions 2019 shape."""
    ref = resources.files("hadis") / "data" / "traces" / "azure_functions_shape.csv"
    with resources.as_file(ref) as path, open(path, newline="") as fh:
        return np.array([float(r["invocations"]) for r in csv.DictReader(fh)])


def azure_functions(
    qps_min: float = 1.0, qps_max: float = 6.4, point_s: float = 10.0, seed: int = 0
) -> Trace:
    """The paper's workload: the shape min-max rescaled to [qps_min, qps_max], point_s
    seconds per point, Poisson arrivals within each point, prompts uniform over 5,000."""
    if not 0 <= qps_min <= qps_max:
        raise HadisError(f"expected 0 <= qps min <= qps max, got {qps_min}:{qps_max}")
    if not point_s > 0:
        raise HadisError(f"point seconds must be > 0, got {point_s}")
    shape = azure_functions_shape()
    _check_limits(qps_max * point_s * len(shape), point_s * len(shape))
    scaled = (shape - shape.min()) / (shape.max() - shape.min())
    rates = qps_min + scaled * (qps_max - qps_min)
    rng = np.random.default_rng(seed)
    arrivals = _poisson_points(rates, point_s, rng)
    return Trace(arrivals, _draw_prompts(len(arrivals), rng), name="azure-functions")


def _check_limits(queries: float, span_s: float) -> None:
    """Refuse, before generating, a trace of more than MAX_TRACE_QUERIES queries (at most,
    by its rates) or one spanning more than MAX_TRACE_SPAN_S."""
    if queries > MAX_TRACE_QUERIES:
        raise HadisError(
            f"that trace would hold up to {queries:,.0f} queries; the limit is "
            f"{MAX_TRACE_QUERIES:,} (lower the rate or the duration)"
        )
    if span_s > MAX_TRACE_SPAN_S:
        raise HadisError(f"a trace may span at most {MAX_TRACE_SPAN_S:.0e} s, got {span_s:.3g}")


def constant(qps: float, duration_s: float, seed: int = 0) -> Trace:
    """Poisson arrivals at a constant rate."""
    return step([(qps, duration_s)], seed=seed, name="constant")


def step(levels: list[tuple[float, float]], seed: int = 0, name: str = "step") -> Trace:
    """Consecutive segments of (qps, seconds), Poisson arrivals within each."""
    if not levels:
        raise HadisError("a step trace needs at least one (qps, seconds) level")
    for qps, seconds in levels:
        if not (np.isfinite(qps) and np.isfinite(seconds)) or qps < 0 or seconds <= 0:
            raise HadisError(f"each level needs qps >= 0 and seconds > 0, got {qps}:{seconds}")
    _check_limits(sum(q * s for q, s in levels), sum(s for _, s in levels))
    rng = np.random.default_rng(seed)
    parts, offset = [], 0.0
    for qps, seconds in levels:
        parts.append(offset + _poisson_points(np.array([qps]), seconds, rng))
        offset += seconds
    arrivals = np.concatenate(parts)
    return Trace(arrivals, _draw_prompts(len(arrivals), rng), name=name)


def bursty(
    qps: float,
    duration_s: float,
    *,
    burstiness: float = 4.0,
    burst_s: float = 30.0,
    calm_s: float = 90.0,
    seed: int = 0,
) -> Trace:
    """A Markov-modulated Poisson process: calm and burst periods (exponential lengths,
    means `calm_s` and `burst_s`) with Poisson arrivals whose rate in a burst is
    `burstiness` times the calm rate, scaled so that the long-run mean is `qps`.
    burstiness 1 is a plain Poisson process; 10 gives 1-s peaks of tens of queries at a
    few q/s mean. Starts calm; same seed, same trace."""
    for name, value in (("qps", qps), ("seconds", duration_s), ("burst seconds", burst_s)):
        if not (np.isfinite(value) and value > 0):
            raise HadisError(f"{name} must be > 0, got {value}")
    if not (np.isfinite(burstiness) and burstiness >= 1):
        raise HadisError(f"burstiness must be >= 1, got {burstiness}")
    if not (np.isfinite(calm_s) and calm_s > 0):
        raise HadisError(f"calm seconds must be > 0, got {calm_s}")
    _check_limits(qps * duration_s, duration_s)
    if duration_s / (burst_s + calm_s) > MAX_BURST_PERIODS:  # one loop step per period
        raise HadisError(
            f"{duration_s:g} s of {burst_s:g} s bursts and {calm_s:g} s calm periods is more "
            f"than {MAX_BURST_PERIODS:,} periods; lengthen them or shorten the trace"
        )
    p_burst = burst_s / (burst_s + calm_s)
    calm_rate = qps / ((1 - p_burst) + p_burst * burstiness)
    rng = np.random.default_rng(seed)
    parts, t, in_burst = [], 0.0, False
    while t < duration_s:
        length = min(rng.exponential(burst_s if in_burst else calm_s), duration_s - t)
        rate = calm_rate * (burstiness if in_burst else 1.0)
        n = rng.poisson(rate * length)
        parts.append(t + np.sort(rng.uniform(0.0, length, size=n)))
        t += length
        in_burst = not in_burst
    arrivals = np.concatenate(parts) if parts else np.zeros(0)
    return Trace(arrivals, _draw_prompts(len(arrivals), rng), name=f"bursty-x{burstiness:g}")


def parse_levels(text: str) -> list[tuple[float, float]]:
    """'1:100,4:200' -> [(1.0, 100.0), (4.0, 200.0)] (qps:seconds pairs)."""
    try:
        return [(float(q), float(s)) for q, s in (part.split(":") for part in text.split(","))]
    except ValueError:
        raise HadisError(f"levels must look like 'QPS:SECONDS,QPS:SECONDS', got {text!r}") from None


def _parse_time(value: str, line: int) -> float:
    try:
        return datetime.fromisoformat(value.strip().replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise HadisError(f"line {line}: timestamp {value!r} is not an ISO 8601 date-time") from None


def load_trace_csv(path: str | Path, seed: int = 0) -> Trace:
    """A trace from CSV: `arrival_s` (seconds) or `timestamp` (ISO 8601), optionally
    `prompt_id` (a reference prompt) and/or `prompt` (text). Rows may come in any order."""
    path = Path(path)
    where = f"trace {path}"
    _, rows = read_csv(
        path, "trace", one_of=("arrival_s", "timestamp"), optional=("prompt_id", "prompt")
    )
    times, ids, texts = [], [], []
    absolute = False
    for row in rows:
        v = row.values
        if v.get("arrival_s", "") != "":
            t = parse_float(v["arrival_s"], f"{where}: line {row.line}: arrival_s")
            if t < 0:
                raise HadisError(f"{where}: line {row.line}: arrival_s must be >= 0, got {t}")
        elif v.get("timestamp", "") != "":
            t, absolute = _parse_time(v["timestamp"], row.line), True
        else:
            raise HadisError(f"{where}: line {row.line}: no arrival_s or timestamp")
        times.append(t)
        pid = v.get("prompt_id", "")
        if pid:
            ids.append(parse_int(pid, f"{where}: line {row.line}: prompt_id"))
            if not 0 <= ids[-1] < N_REFERENCE_PROMPTS:
                raise HadisError(
                    f"{where}: line {row.line}: prompt_id must be in [0, "
                    f"{N_REFERENCE_PROMPTS}), got {ids[-1]}"
                )
        else:
            ids.append(-1)
        texts.append(v.get("prompt") or None)
    arr = np.array(times, dtype=float)
    if absolute:
        arr -= arr.min()
    order = np.argsort(arr, kind="stable")
    pid_arr = np.array(ids, dtype=np.int64)[order]
    text = tuple(texts[i] for i in order)
    for i, t in enumerate(text):
        if pid_arr[i] < 0 and t is not None:  # a reference prompt given by its text
            known = reference_prompt_id(t)
            pid_arr[i] = -1 if known is None else known
    missing = (pid_arr < 0) & np.array([t is None for t in text], dtype=bool)
    rng = np.random.default_rng(seed)
    pid_arr[missing] = _draw_prompts(int(missing.sum()), rng)
    has_text = any(t is not None for t in text)
    return Trace(arr[order], pid_arr, text if has_text else None, name=path.stem)


def write_trace_csv(trace: Trace, path: str | Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["arrival_s", "prompt_id"])
        for t, p in zip(trace.arrival_s, trace.prompt_id, strict=True):
            w.writerow([f"{t:.6f}", int(p)])
