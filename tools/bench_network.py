"""Whole networks at batch 1: d2lcc.compile (TVM) against onnxruntime.

Run on a quiet machine: ``.venv/bin/python tools/bench_network.py``. Both
runtimes use every core; they are timed in alternating rounds (one round of
TVM, one of onnxruntime, ...) so that load on the machine hurts both alike,
and the best round of each counts. Each network's last line reads
``NAME: tvm X ms, onnxruntime Y ms, ratio R`` with R = onnxruntime / TVM
(R > 1: TVM is faster).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import d2lcc
from d2lcc import models, zoo


def _networks(names):
    for name in names:
        if name == "small_cnn":
            weights = models.small_cnn_weights(0)
            yield name, models.small_cnn_onnx(weights), (1, 3, 32, 32)
        else:
            model = zoo.load(name)
            yield name, model, zoo.input_shape(model)


def best_settings(name):
    """The book's best applied schedules for a network: a shipped database where
    there is one (MetaSchedule, tuned by tools/tune_network_database.py), else the
    packed convolutions."""
    from d2lcc import compiler, tuning

    if name in compiler.SHIPPED_NETWORKS:
        folder = compiler.shipped_network_database(name)
        return dict(schedules="dlight", database=tuning.load_database(folder))
    return dict(schedules="book")


def onnxruntime_session(model):
    """An onnxruntime session of ``model`` with default options, quiet."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), options,
                                providers=["CPUExecutionProvider"])


def timed_round(fn, seconds):
    """Seconds per call of ``fn`` over one round of at least ``seconds``."""
    fn()
    runs, start = 0, time.perf_counter()
    while True:
        fn()
        runs += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return elapsed / runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("networks", nargs="*", default=["small_cnn", "resnet50"])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--round-seconds", type=float, default=1.0)
    args = parser.parse_args()
    print(d2lcc.env())
    for name, model, shape in _networks(args.networks):
        x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        start = time.perf_counter()
        net = d2lcc.compile(model, **best_settings(name))
        compile_s = time.perf_counter() - start
        # Profile before onnxruntime runs at all: its worker threads spin for a
        # while after each run and would stall whichever kernel comes first.
        slowest = net.profile(x, repeat=5)[:6]
        session = onnxruntime_session(model)
        feed = {session.get_inputs()[0].name: x}
        ref = session.run(None, feed)[0]
        np.testing.assert_allclose(net(x), ref, rtol=1e-3, atol=1e-4)
        tvm_call, ort_call = net.timer(x), (lambda: session.run(None, feed))
        best = {"tvm": float("inf"), "ort": float("inf")}
        for r in range(args.rounds):
            t_tvm = timed_round(tvm_call, args.round_seconds)
            t_ort = timed_round(ort_call, args.round_seconds)
            best["tvm"], best["ort"] = min(best["tvm"], t_tvm), min(best["ort"], t_ort)
            print(f"  {name} round {r}: tvm {t_tvm * 1e3:.3f} ms, "
                  f"onnxruntime {t_ort * 1e3:.3f} ms")
        print(f"  {name}: compiled in {compile_s:.1f} s; slowest kernels:")
        for row in slowest:
            print(f"    {row.name:44s} {row.seconds * 1e3:8.3f} ms {row.share:6.1%}")
        ratio = best["ort"] / best["tvm"]
        print(f"{name}: tvm {best['tvm'] * 1e3:.3f} ms, onnxruntime "
              f"{best['ort'] * 1e3:.3f} ms, ratio {ratio:.2f}")


if __name__ == "__main__":
    main()
