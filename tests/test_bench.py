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
        ({"repeat": 0}, ValueError, "bench.measure: repeat=0"),
        ({"repeat": 2**40}, ValueError, "repeat=1099511627776 must be <= 1000"),
        ({"warmup": -1}, ValueError, "warmup=-1"),
        ({"warmup": True}, TypeError, "warmup must be an int"),
        ({"number": 1.5}, TypeError, "number must be an int"),
        ({"number": 2**40}, ValueError, "number=1099511627776 must be <="),
        ({"min_round_s": 0}, ValueError, "min_round_s=0.0 must be > 0"),
        ({"min_round_s": float("nan")}, ValueError, "min_round_s=nan"),
        ({"min_round_s": "fast"}, TypeError, "min_round_s must be a real"),
        ({"name": None}, TypeError, "name must be a str"),
    ],
)
def test_measure_rejects_bad_arguments(kwargs, exc, msg):
    with pytest.raises(exc, match=msg):
        bench.measure(lambda: None, **kwargs)
    with pytest.raises(TypeError, match="bench.measure: fn must be callable"):
        bench.measure(42)


def test_measure_refuses_an_endless_round_instead_of_hanging():
    calls = []
    start = time.perf_counter()
    with pytest.raises(ValueError, match="min_round_s=inf must be a finite number"):
        bench.measure(lambda: calls.append(1), min_round_s=float("inf"))
    with pytest.raises(ValueError, match=f"must be <= {bench.MAX_ROUND_S}"):
        bench.measure(lambda: calls.append(1), min_round_s=1e9)
    assert calls == [] and time.perf_counter() - start < 1


def test_measure_caps_the_automatic_number():
    t = bench.measure(lambda: None, warmup=0, repeat=1, min_round_s=1e-3)
    assert 1 < t.number <= bench.MAX_NUMBER


def test_timing_checks_its_fields_and_handles_zero_times():
    with pytest.raises(ValueError, match="bench.Timing: seconds must not be empty"):
        bench.Timing("a", (), 1)
    with pytest.raises(ValueError, match=r"seconds\[1\]=inf must be a finite"):
        bench.Timing("a", (1.0, float("inf")), 1)
    with pytest.raises(ValueError, match=r"seconds\[0\]=-1.0 must be >= 0"):
        bench.Timing("a", (-1.0,), 1)
    with pytest.raises(ValueError, match="bench.Timing: number=0"):
        bench.Timing("a", (1.0,), 0)
    with pytest.raises(TypeError, match="bench.Timing: name must be a str"):
        bench.Timing(None, (1.0,), 1)
    assert bench.Timing("a", [0.0, 0.0], 1).spread == 0.0
    assert bench.Timing("a", (0.0, 0.0, 1.0), 1).spread == float("inf")
    assert bench.Timing("a", (1.0, 2.0, 3.0), 1).spread == 1.0


def test_comparison_refuses_zero_median_and_bad_fields():
    zero, one = bench.Timing("zero", (0.0,), 1), bench.Timing("one", (1.0,), 1)
    c = bench.Comparison([one, zero], flops=1e9)
    assert c.speedup("one") == 1.0
    with pytest.raises(ValueError, match="'zero' has a median of 0 s"):
        c.speedup("zero")
    with pytest.raises(ValueError, match="'zero' has a median of 0 s"):
        c.gflops("zero")
    with pytest.raises(ValueError, match="'zero' has a median of 0 s"):
        bench.Comparison([zero, one]).speedup("one")
    with pytest.raises(ValueError, match="Comparison.speedup: name='two' is not"):
        c.speedup("two")
    with pytest.raises(ValueError, match="repeated names"):
        bench.Comparison([one, one])
    with pytest.raises(ValueError, match="bench.Comparison: flops=inf"):
        bench.Comparison([one], flops=float("inf"))
    with pytest.raises(TypeError, match=r"timings\[0\] must be a Timing"):
        bench.Comparison([1.0])
    with pytest.raises(ValueError, match="timings must not be empty"):
        bench.Comparison([])


def test_compare_speedup_and_gflops():
    slow = lambda: time.sleep(0.004)  # noqa: E731
    fast = lambda: time.sleep(0.001)  # noqa: E731
    c = bench.compare(
        {"slow": slow, "fast": fast}, flops=1e6, nbytes=2e6, repeat=3, number=2
    )
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
    with pytest.raises(TypeError, match="bench.compare: candidates must be a dict"):
        bench.compare([lambda: None])
    with pytest.raises(TypeError, match=r"candidates\['a'\] must be callable"):
        bench.compare({"a": 1})
    with pytest.raises(ValueError, match="flops=0.0 must be > 0"):
        bench.compare({"a": lambda: None}, flops=0)
    with pytest.raises(ValueError, match="nbytes=nan"):
        bench.compare({"a": lambda: None}, nbytes=float("nan"))
    with pytest.raises(TypeError, match="unexpected keyword argument 'repeats'"):
        bench.compare({"a": lambda: None}, repeats=3)
    c = bench.compare({"a": lambda: None}, repeat=1, min_round_s=0.001)
    with pytest.raises(ValueError, match="no flops"):
        c.gflops("a")
    with pytest.raises(KeyError, match="no candidate named 'b'"):
        c["b"]
    with pytest.raises(ValueError, match="name='b' is not a candidate"):
        c.speedup("b")


def test_sweep_and_series_numpy_matmul():
    def make(n):
        a = np.random.default_rng(n).standard_normal((n, n), dtype=np.float32)
        return {"matmul": lambda: a @ a, "dot": lambda: np.dot(a, a)}

    results = bench.sweep(
        np.array([16, 32]), make, flops=lambda n: 2 * n**3, repeat=2, min_round_s=0.001
    )
    assert len(results) == 2
    gf = bench.series(results, "gflops")
    assert set(gf) == {"matmul", "dot"}
    assert all(len(v) == 2 and min(v) > 0 for v in gf.values())
    assert bench.series(results, "speedup")["matmul"] == [1.0, 1.0]
    with pytest.raises(ValueError, match="metric='flops'"):
        bench.series(results, "flops")
    with pytest.raises(ValueError, match="sizes must not be empty"):
        bench.sweep([], make)
    with pytest.raises(TypeError, match="bench.sweep: sizes must be a list"):
        bench.sweep(16, make)
    with pytest.raises(TypeError, match="make_candidates must be callable"):
        bench.sweep([16], None)
    with pytest.raises(TypeError, match="bench.series: results must be a list"):
        bench.series(None)
    with pytest.raises(ValueError, match="results must not be empty"):
        bench.series([])
    other = bench.compare({"matmul": lambda: None}, repeat=1, min_round_s=0.001)
    with pytest.raises(ValueError, match=r"results\[1\] has candidates \['matmul'\]"):
        bench.series([results[0], other])
