import time

import numpy as np
import pytest

from d2lcc import bench


def test_measure_reports_per_call_seconds():
    t = bench.measure(lambda: time.sleep(0.002), repeat=3, number=2, warmup=0)
    assert len(t.seconds) == 3 and t.number == 2
    assert 0.0015 < t.median < 0.05
    assert t.best <= t.median and t.spread >= 0


def test_measure_calibrates_number():
    t = bench.measure(lambda: None, repeat=2, min_round_s=0.005)
    assert t.number > 1  # a no-op needs many calls to fill a round


def test_measure_counts_warmup_calls():
    calls = []
    bench.measure(lambda: calls.append(1), warmup=3, repeat=2, number=4)
    assert len(calls) == 3 + 2 * 4


@pytest.mark.parametrize(
    "kwargs, exc, msg",
    [
        ({"repeat": 0}, ValueError, "repeat=0"),
        ({"warmup": -1}, ValueError, "warmup=-1"),
        ({"number": 1.5}, TypeError, "number must be an int"),
        ({"min_round_s": 0}, ValueError, "min_round_s"),
    ],
)
def test_measure_rejects_bad_arguments(kwargs, exc, msg):
    with pytest.raises(exc, match=msg):
        bench.measure(lambda: None, **kwargs)
    with pytest.raises(TypeError, match="fn must be callable"):
        bench.measure(42)


def test_compare_speedup_and_gflops():
    slow = lambda: time.sleep(0.004)  # noqa: E731
    fast = lambda: time.sleep(0.001)  # noqa: E731
    c = bench.compare({"slow": slow, "fast": fast}, flops=1e6, nbytes=2e6, repeat=3, number=2)
    assert c.baseline == "slow"
    assert c.speedup("slow") == 1.0
    assert c.speedup("fast") > 1.5
    assert c.gflops("fast") == pytest.approx(1e6 / c["fast"].median / 1e9)
    assert c.gbps("slow") == pytest.approx(2e6 / c["slow"].median / 1e9)
    table = str(c)
    assert "GFLOPS" in table and "GB/s" in table and "vs slow" in table
    assert [r["name"] for r in c.rows()] == ["slow", "fast"]


def test_compare_errors():
    with pytest.raises(ValueError, match="non-empty"):
        bench.compare({})
    with pytest.raises(ValueError, match="flops=0"):
        bench.compare({"a": lambda: None}, flops=0)
    c = bench.compare({"a": lambda: None}, repeat=1, min_round_s=0.001)
    with pytest.raises(ValueError, match="no flops"):
        c.gflops("a")
    with pytest.raises(KeyError, match="no candidate named 'b'"):
        c.speedup("b")


def test_sweep_and_series_numpy_matmul():
    def make(n):
        a = np.random.default_rng(n).standard_normal((n, n), dtype=np.float32)
        return {"matmul": lambda: a @ a, "dot": lambda: np.dot(a, a)}

    results = bench.sweep([16, 32], make, flops=lambda n: 2 * n**3, repeat=2, min_round_s=0.001)
    assert len(results) == 2
    gf = bench.series(results, "gflops")
    assert set(gf) == {"matmul", "dot"} and all(len(v) == 2 and min(v) > 0 for v in gf.values())
    assert bench.series(results, "speedup")["matmul"] == [1.0, 1.0]
    with pytest.raises(ValueError, match="metric='flops'"):
        bench.series(results, "flops")
    with pytest.raises(ValueError, match="sizes must not be empty"):
        bench.sweep([], make)
