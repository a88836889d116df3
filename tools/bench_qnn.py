"""The 2019 table on this machine: Inception v1, float32 against int8, TVM, onnxruntime.

Run on a quiet machine: ``.venv/bin/python tools/bench_qnn.py``. Every
candidate runs at batch 1 on every core; candidates are timed in alternating
rounds (one round of each, then again) so that load on the machine hurts all
alike, and the best round of each counts.

Candidates (all on the same seeded Inception v1 of :mod:`d2lcc.zoo`, quantized
by onnxruntime's post-training quantizer with per-channel weights):

- ``fp32``: ``d2lcc.compile`` with the book's float schedules, host target;
- ``int8-asym`` / ``int8-sym``: the quantized model (uint8 activations over
  their range / int8 activations symmetric around zero), imported by
  ``d2lcc.qnn.from_onnx`` and compiled by
  ``d2lcc.compile`` with the int8 kernels of the host's best ISA;
- ``onnxruntime-fp32`` and ``onnxruntime-int8`` (the faster of its QDQ and
  QOperator files of the asymmetric model);
- ``fp32-avx2`` / ``int8-avx2``: the same compiled for a Haswell (AVX2) target.

Where the host has no VNNI, the host rows use AVX2 too: the script prints the
ISA each int8 row used. The last lines read exactly ``int8-asym vs fp32: R``,
``int8-sym vs fp32: R``, ``int8 vs onnxruntime-int8: R``,
``int8-avx2 vs fp32-avx2: R`` with R = time of the right-hand side / time of
the left-hand side (R > 1: TVM's int8 is faster).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import d2lcc
from d2lcc import zoo
from d2lcc.int8 import x86
from d2lcc.qnn import onnx_import, ptq

# Run as a script from tools/, next to the network benchmark it shares these with.
from bench_network import onnxruntime_session, timed_round


def quantized(model, calibration, symmetric, reduce_range, quant_format="QOperator"):
    """The model quantized by onnxruntime with per-channel int8 weights.

    Asymmetric: uint8 activations over their calibrated range; symmetric: int8
    activations with zero point 0, as in the 2019 table.
    """
    return ptq.quantize_model(model, calibration, quant_format=quant_format,
                              per_channel=True,
                              activation_type="int8" if symmetric else "uint8",
                              weight_type="int8", reduce_range=reduce_range,
                              symmetric_activation=symmetric)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="inception_v1")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--round-seconds", type=float, default=1.0)
    args = parser.parse_args()
    print(d2lcc.env())
    host, avx2 = d2lcc.target.host(), d2lcc.target.haswell()
    isa = x86.isa_of(host)
    # AVX2's vpmaddubsw adds pairs of products in int16: 7-bit weights keep the
    # sums exact, so an AVX2 host needs onnxruntime's reduce_range.
    reduce_range = isa == "avx2"
    print(f"host int8 ISA: {isa}; reduce_range={reduce_range}")

    model = zoo.load(args.model, seed=0)
    rng = np.random.default_rng(0)
    shape = zoo.input_shape(model)
    calibration = rng.standard_normal((8, *shape[1:])).astype(np.float32)
    x = rng.standard_normal(shape).astype(np.float32)

    q_asym = quantized(model, calibration, False, reduce_range)
    q_sym = quantized(model, calibration, True, reduce_range)
    q_avx2 = quantized(model, calibration, False, True)
    q_asym_qdq = quantized(model, calibration, False, reduce_range, "QDQ")

    start = time.perf_counter()
    compiled = {
        "fp32": d2lcc.compile(model, host),
        "int8-asym": d2lcc.compile(onnx_import.from_onnx(q_asym), host),
        "int8-sym": d2lcc.compile(onnx_import.from_onnx(q_sym), host),
        "fp32-avx2": d2lcc.compile(model, avx2),
        "int8-avx2": d2lcc.compile(onnx_import.from_onnx(q_avx2), avx2),
    }
    print(f"compiled {len(compiled)} models in {time.perf_counter() - start:.0f} s")
    sessions = {"onnxruntime-fp32": onnxruntime_session(model),
                "onnxruntime-int8-qoperator": onnxruntime_session(q_asym),
                "onnxruntime-int8-qdq": onnxruntime_session(q_asym_qdq)}
    feeds = {k: {s.get_inputs()[0].name: x} for k, s in sessions.items()}

    # Correctness first: float models against onnxruntime float, int8 models
    # against onnxruntime running the same quantized file.
    ref = sessions["onnxruntime-fp32"].run(None, feeds["onnxruntime-fp32"])[0]
    for name in ("fp32", "fp32-avx2"):
        np.testing.assert_allclose(compiled[name](x), ref, rtol=1e-3, atol=1e-4)
    for name, qmodel in (("int8-asym", q_asym), ("int8-sym", q_sym),
                         ("int8-avx2", q_avx2)):
        expected = onnxruntime_session(qmodel).run(None, {sessions["onnxruntime-fp32"]
                                               .get_inputs()[0].name: x})[0]
        got = np.asarray(compiled[name](x))
        print(f"  {name}: worst difference from onnxruntime on the same file "
              f"{np.abs(got - expected).max():.3g} (output range "
              f"{np.abs(expected).max():.3g})")

    calls = {name: net.timer(x) for name, net in compiled.items()}
    for name, session in sessions.items():
        calls[name] = (lambda s=session, f=feeds[name]: s.run(None, f))
    best = {name: float("inf") for name in calls}
    for r in range(args.rounds):
        row = []
        for name, fn in calls.items():
            t = timed_round(fn, args.round_seconds)
            best[name] = min(best[name], t)
            row.append(f"{name} {t * 1e3:.2f}")
        print(f"  round {r}: " + ", ".join(row) + " (ms)")
    for name, t in best.items():
        print(f"  best {name:28s} {t * 1e3:8.3f} ms")
    ort_int8 = min(best["onnxruntime-int8-qoperator"], best["onnxruntime-int8-qdq"])
    print(f"int8-asym vs fp32: {best['fp32'] / best['int8-asym']:.2f}")
    print(f"int8-sym vs fp32: {best['fp32'] / best['int8-sym']:.2f}")
    print(f"int8 vs onnxruntime-int8: {ort_int8 / best['int8-asym']:.2f}")
    print(f"int8-avx2 vs fp32-avx2: {best['fp32-avx2'] / best['int8-avx2']:.2f}")


if __name__ == "__main__":
    main()
