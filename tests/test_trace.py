import numpy as np
import pytest

from hadis.errors import HadisError
from hadis.sim.trace import (
    azure_functions,
    azure_functions_shape,
    constant,
    load_trace_csv,
    parse_levels,
    step,
    write_trace_csv,
)


def test_azure_functions_workload_shape():
    trace = azure_functions(1.0, 6.4, 10.0, seed=0)
    shape = azure_functions_shape()
    assert len(shape) == 347
    assert trace.duration_s <= 3470.0
    scaled = 1.0 + (shape - shape.min()) / (shape.max() - shape.min()) * 5.4
    expected = scaled.sum() * 10.0
    assert abs(len(trace) - expected) < 4 * np.sqrt(expected)
    # no spill-over: each point's arrivals stay inside it
    counts = np.bincount((trace.arrival_s // 10).astype(int), minlength=347)
    assert len(counts) == 347
    assert np.all((trace.prompt_id >= 0) & (trace.prompt_id < 5000))


def test_same_seed_same_trace_and_other_seed_differs():
    a, b, c = azure_functions(seed=3), azure_functions(seed=3), azure_functions(seed=4)
    assert np.array_equal(a.arrival_s, b.arrival_s)
    assert np.array_equal(a.prompt_id, b.prompt_id)
    assert not np.array_equal(a.arrival_s[:100], c.arrival_s[:100])


def test_constant_and_step_traces():
    t = constant(5.0, 200.0, seed=1)
    assert abs(len(t) - 1000) < 4 * np.sqrt(1000)
    s = step(parse_levels("1:100,10:100"), seed=1)
    first = (s.arrival_s < 100).sum()
    assert first < (s.arrival_s >= 100).sum() / 4
    with pytest.raises(HadisError, match="QPS:SECONDS"):
        parse_levels("1-100")


def test_csv_round_trip_and_timestamps(tmp_path):
    t = constant(2.0, 50.0, seed=2)
    path = tmp_path / "t.csv"
    write_trace_csv(t, path)
    back = load_trace_csv(path)
    assert np.allclose(back.arrival_s, t.arrival_s, atol=1e-6)
    assert np.array_equal(back.prompt_id, t.prompt_id)
    ts = tmp_path / "ts.csv"
    ts.write_text(
        "timestamp,prompt\n2024-01-01T00:00:10Z,x\n2024-01-01T00:00:00Z,"
        "a white handkerchief with embroidered star on it\n2024-01-01T00:00:02.5Z,\n"
    )
    tr = load_trace_csv(ts, seed=0)
    assert tr.arrival_s.tolist() == [0.0, 2.5, 10.0]
    assert tr.prompt_id[0] == 0  # reference prompt given by its text
    assert 0 <= tr.prompt_id[1] < 5000  # missing prompt: drawn with the seed
    assert tr.prompt_id[2] == -1 and tr.prompt[2] == "x"  # unknown text kept as text


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("when\n1\n", "needs an 'arrival_s' or 'timestamp' column"),
        ("arrival_s\nabc\n", "line 2: arrival_s 'abc' is not a number"),
        ("arrival_s\n-1\n", "line 2: arrival_s must be >= 0"),
        ("arrival_s,prompt_id\n1,7000\n", "prompt_id must be in"),
        ("timestamp\nyesterday\n", "not an ISO 8601"),
        ("arrival_s\n", "has no rows"),
    ],
)
def test_bad_trace_files(tmp_path, content, match):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(HadisError, match=match):
        load_trace_csv(path)


def test_bursty_trace_is_seeded_has_its_mean_and_more_burstiness_means_more_variance():
    from hadis.sim.trace import bursty

    a, b = (
        bursty(3.0, 20000.0, burstiness=10.0, seed=4),
        bursty(3.0, 20000.0, burstiness=10.0, seed=4),
    )
    assert np.array_equal(a.arrival_s, b.arrival_s) and np.array_equal(a.prompt_id, b.prompt_id)
    assert len(a) / 20000.0 == pytest.approx(3.0, rel=0.1)

    def cv(t):
        rates = np.bincount((t.arrival_s // 50).astype(int))
        return rates.std() / rates.mean()

    plain = bursty(3.0, 20000.0, burstiness=1.0, seed=4)
    assert cv(plain) < cv(bursty(3.0, 20000.0, burstiness=3.0, seed=4)) < cv(a)
    assert cv(a) > 0.6  # 1-s peaks of tens of queries, the regime the issue describes
    for kwargs in ({"burstiness": 0.5}, {"burst_s": 0.0}, {"calm_s": -1.0}):
        with pytest.raises(HadisError):
            bursty(3.0, 100.0, **kwargs)
