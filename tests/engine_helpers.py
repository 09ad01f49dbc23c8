"""Test doubles: fixed-score router/discriminator, hand-made plans, a tiny event driver."""

from __future__ import annotations

import heapq
import itertools

from hadis.engine import Dispatch, Engine, Query
from hadis.planner import Plan
from hadis.routing import cut_above, cut_below


class TableRouter:
    """Router score = table[prompt_id]; thresholds over the table's own scores."""

    name = "table"

    def __init__(self, scores: list[float]) -> None:
        self.scores = scores
        self._sorted = sorted(scores)

    def score(self, prompt_id, prompt=None):
        return self.scores[prompt_id]

    def threshold(self, r):
        return cut_above(self._sorted, r)


class TableDiscriminator:
    """Confidence = table[prompt_id] for every model."""

    name = "table"

    def __init__(self, conf: list[float]) -> None:
        self.conf = conf
        self._sorted = sorted(conf)

    def confidence(self, model, prompt_id, image_seed, image=None):
        return self.conf[prompt_id]

    def threshold(self, model, d):
        return cut_below(self._sorted, d)


def make_plan(gpus, batch, light, heavy=None, r=0.0, d=0.0, split=None, admission=None):
    return Plan(
        policy="test",
        light=light,
        heavy=heavy,
        r=r,
        d=d,
        gpus=gpus,
        batch=batch,
        quality=0.0,
        feasible=True,
        demand_qps=1.0,
        load_qps={},
        capacity_qps={},
        path_latency_s={},
        split=split,
        admission_factor=admission,
    )


def drive(engine: Engine, arrivals, plans=(), until=1e9):
    """Replay (time, prompt_id) arrivals and (time, plan) changes; latencies from profile.
    A driver's duties: it scores queries the plan routes by score before submitting them,
    and the images of each batch the engine asks it to score (engine.router/discriminator
    are this file's table scorers)."""
    heap, seq = [], itertools.count()
    events = [(t, 1, ("arrive", qid, pid)) for qid, (t, pid) in enumerate(arrivals)]
    events += [(t, -1, ("plan", p)) for t, p in plans]
    for t, prio, e in events:
        heapq.heappush(heap, (t, prio, next(seq), e))
    queries = []

    def run(now, cmds):
        for c in cmds:
            if isinstance(c, Dispatch):
                dur = engine.profile.model(c.model).batch_latency_s(len(c.queries))
                confidences = [
                    engine.discriminator.confidence(c.model, q.prompt_id, q.image_seed)
                    if scored
                    else None
                    for q, scored in zip(c.queries, c.scored(), strict=True)
                ]
                heapq.heappush(heap, (now + dur, 0, next(seq), ("done", c.worker, confidences)))
            else:
                heapq.heappush(heap, (now + c.expected_s, 0, next(seq), ("wake", c.worker)))

    while heap and heap[0][0] <= until:
        now, _, _, e = heapq.heappop(heap)
        if e[0] == "arrive":
            q = Query(e[1], now, e[2])
            if engine.routes_by_score:
                q.router_score = engine.router.score(q.prompt_id, q.prompt)
            queries.append(q)
            run(now, engine.submit(now, q))
        elif e[0] == "plan":
            run(now, engine.apply_plan(now, e[1]))
        elif e[0] == "done":
            run(now, engine.batch_done(now, e[1], e[2]))
        else:
            run(now, engine.worker_ready(now, e[1]))
    return queries
