"""Benchmark the operator chapter's final schedules against their library baselines.

Run from the repository root, ideally on a quiet machine::

    .venv/bin/python tools/bench_operators.py            # every benchmark
    .venv/bin/python tools/bench_operators.py matmul     # only the ones named
    .venv/bin/python tools/bench_operators.py --threads 1 matmul   # one core each

``--threads N`` limits both sides (OpenBLAS and TVM's thread pool) to N
threads; on a machine shared with other jobs, one core each is the steadier
comparison of kernel quality. The default is every core, as in the book.

Each benchmark is one function ``bench_<name>()`` that prints its own lines and
returns ``{label: ratio}`` (TVM over baseline, higher is better); add a
benchmark by adding such a function to :data:`BENCHMARKS`. Baseline and
candidate are timed in alternating rounds and each reports its best round, so
that load from other processes hurts both alike. This is a report, not a test:
nothing here fails when a ratio is low.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Callable


def best_seconds(fns: dict[str, Callable[[], object]], rounds: int = 7, min_round_s: float = 0.05,
                 pause_s: float = 0.3) -> dict[str, float]:
    """Best seconds per call of each callable, timed in alternating rounds.

    After each round we pause for ``pause_s``: a thread pool spins for a while
    after its last task before it sleeps (OpenBLAS for about 0.1 s), and a
    spinning pool from one library would steal cores from the next round.
    """
    calls = {}
    for name, fn in fns.items():
        fn()  # warm up (and page in memory)
        start, number = time.perf_counter(), 0
        while time.perf_counter() - start < min_round_s:
            fn()
            number += 1
        calls[name] = number
    best = {name: float("inf") for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(calls[name]):
                fn()
            best[name] = min(best[name], (time.perf_counter() - start) / calls[name])
            time.sleep(pause_s)
    return best


def bench_matmul(sizes=(256, 1024, 2048)) -> dict[str, float]:
    """The final hand schedule of :numref:`sec_operators_matmul` (``micro_kernel``) against NumPy."""
    import numpy as np
    import tvm

    from d2lcc import cpu, matmul, target
    from d2lcc.machine import cores

    shape = matmul.kernel_shape()
    threads = THREADS or cores()
    ratios = {}
    peak = threads * cpu.peak_gflops(threads=1)  # cores do not share FMA units
    print(f"matmul float32, micro-kernel {shape.mr}x{shape.nr}, {threads} threads, "
          f"measured peak {peak:.0f} GFLOPS")
    for n in sizes:
        rng = np.random.default_rng(n)
        a, b = (rng.standard_normal((n, n), dtype=np.float32) for _ in range(2))
        f = matmul.build(matmul.micro_kernel(n, shape.mr, shape.nr), target.host(THREADS))
        dev = tvm.cpu()
        at, bt, ct = (tvm.runtime.tensor(x, dev) for x in (a, b, np.empty((n, n), np.float32)))
        f(at, bt, ct)
        np.testing.assert_allclose(ct.numpy(), a @ b, rtol=1e-3, atol=1e-3 * np.sqrt(n))
        t = best_seconds({"numpy": lambda: a @ b, "tvm": lambda: f(at, bt, ct)})
        gf = {k: 2 * n**3 / v / 1e9 for k, v in t.items()}
        ratios[f"matmul n={n}"] = t["numpy"] / t["tvm"]
        print(f"  n={n:5d}  numpy {gf['numpy']:6.1f} GFLOPS ({gf['numpy'] / peak:4.0%} of peak)  "
              f"tvm {gf['tvm']:6.1f} GFLOPS ({gf['tvm'] / peak:4.0%})  tvm/numpy {ratios[f'matmul n={n}']:.2f}")
    return ratios


def bench_conv() -> dict[str, float]:
    """The packed NCHW[x]c convolution of :numref:`sec_operators_conv` against im2col + NumPy and onnxruntime."""
    import numpy as np

    import tvm

    from d2lcc import conv, cpu, target

    n, c, h, w, o, k, pad = 1, 64, 56, 56, 64, 3, 1
    block = cpu.vector_lanes()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c, h, w), dtype=np.float32)
    wt = rng.standard_normal((o, c, k, k), dtype=np.float32)
    ref = conv.conv2d_im2col(x, wt, pad)
    func = conv.schedule_packed(conv.conv2d_nchwc_te(n, c, h, w, o, k, pad, block))
    lib = tvm.compile(func, target=target.host(THREADS))
    run, out = conv.runner(lib, conv.pack_data(x, block), conv.pack_weight(wt, block, block),
                           out_shape=(n, o // block, h, w, block))
    run()
    np.testing.assert_allclose(conv.unpack_data(out.numpy()), ref, rtol=1e-4, atol=1e-3)
    ort = conv.onnxruntime_conv2d(wt, pad, num_threads=THREADS)
    t = best_seconds({"im2col": lambda: conv.conv2d_im2col(x, wt, pad), "ort": lambda: ort(x), "tvm": run})
    flops = 2 * n * o * h * w * c * k * k
    print(f"conv2d {c}->{o}, {h}x{w}, {k}x{k}, pad {pad}, NCHW{block}c: " + "  ".join(
        f"{name} {flops / v / 1e9:.1f} GFLOPS" for name, v in t.items()))
    return {"conv vs im2col+numpy": t["im2col"] / t["tvm"], "conv vs onnxruntime": t["ort"] / t["tvm"]}


def bench_metaschedule(trials: int = 16) -> dict[str, float]:
    """MetaSchedule-tuned matmul (shipped database, and ``trials`` tuned live) against the hand schedule."""
    import tempfile

    import numpy as np
    import tvm

    from d2lcc import matmul, target, tuning

    n = tuning.SHIPPED_SIZE
    mod = tuning.matmul_workload(n)
    host = target.host(THREADS)
    live_db = tuning.tune(mod, host, tempfile.mkdtemp(prefix="d2lcc_bench_"), trials)
    shipped_db = tuning.shipped_database(tuning.shipped_isa())
    shape = matmul.kernel_shape()
    mods = {
        "hand": matmul.micro_kernel(n, shape.mr, shape.nr).mod,
        "shipped": tuning.apply_best(shipped_db, mod, host),
        f"live{trials}": tuning.apply_best(live_db, mod, host),
    }
    assert tuning.check_applied(mods["shipped"], shipped_db, mod)
    assert tuning.check_applied(mods[f"live{trials}"], live_db, mod)
    rng = np.random.default_rng(n)
    a, b = (rng.standard_normal((n, n), dtype=np.float32) for _ in range(2))
    fns = {"numpy": lambda: a @ b}
    for name, m in mods.items():
        lib = tvm.compile(m, target=host)
        args = [tvm.runtime.tensor(v, tvm.cpu()) for v in (a, b, np.empty((n, n), np.float32))]
        lib(*args)
        np.testing.assert_allclose(args[2].numpy(), a @ b, rtol=1e-3, atol=1e-3 * np.sqrt(n))
        fns[name] = lambda lib=lib, args=args: lib(*args)
    t = best_seconds(fns)
    print(f"matmul n={n}, MetaSchedule: " + "  ".join(f"{k} {2 * n**3 / v / 1e9:.1f} GFLOPS" for k, v in t.items()))
    return {
        "shipped tuned vs hand": t["hand"] / t["shipped"],
        f"live{trials} tuned vs hand": t["hand"] / t[f"live{trials}"],
        "shipped tuned vs numpy": t["numpy"] / t["shipped"],
    }


BENCHMARKS: dict[str, Callable[[], dict[str, float]]] = {
    "matmul": bench_matmul,
    "conv": bench_conv,
    "metaschedule": bench_metaschedule,
}


THREADS: int | None = None  # --threads: None means every core


def main(argv: list[str]) -> None:
    global THREADS
    if argv[:1] == ["--threads"]:
        THREADS, argv = int(argv[1]), argv[2:]
        # Must be set before NumPy (OpenBLAS) and TVM start their thread pools.
        os.environ["OPENBLAS_NUM_THREADS"] = os.environ["TVM_NUM_THREADS"] = str(THREADS)
    import d2lcc
    from d2lcc.cpu import use_all_cores

    # Unset, TVM's pool takes half the hardware threads on x86 (see cpu.use_all_cores).
    print("TVM thread pool:", use_all_cores(THREADS), "threads")

    names = argv or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise SystemExit(f"bench_operators: unknown benchmark(s) {unknown}; have {list(BENCHMARKS)}")
    print(d2lcc.env(), end="\n\n")
    summary = {}
    for name in names:
        summary.update(BENCHMARKS[name]())
    print("\nratio TVM / baseline (higher is better):")
    for label, ratio in summary.items():
        print(f"  {label:24s} {ratio:5.2f}")


if __name__ == "__main__":
    main(sys.argv[1:])
