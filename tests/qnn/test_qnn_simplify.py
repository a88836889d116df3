"""FoldDequantizeQuantize: quantize(dequantize(q)) with equal parameters is q."""

import numpy as np
import pytest
from tvm import relax

from d2lcc import qnn
from d2lcc.qnn import reference as ref

from qnn_harness import build_module, compile_and_run, qnn_ops_in


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int16"])
def test_round_trip_is_exact_for_every_value(rng, dtype):
    info = np.iinfo(dtype)
    q = np.arange(info.min, info.max + 1).astype(dtype)
    for scale in rng.uniform(1e-6, 1e3, 200).astype("float32"):
        zp = int(rng.integers(info.min, info.max + 1))
        back = ref.quantize(ref.dequantize(q, scale, zp), scale, zp, dtype)
        np.testing.assert_array_equal(back, q)


def _pair(q_dtype, shape, s, z, s2=None, z2=None, out_dtype=None, axis=-1):
    def make(v):
        bb = relax.BlockBuilder.current()
        x = bb.emit(qnn.dequantize(v, s, z, axis=axis))
        y = bb.emit(relax.op.nn.relu(x)) if s2 == "relu" else x
        s_out = s if s2 in (None, "relu") else s2
        z_out = z if z2 is None else z2
        return qnn.quantize(y, s_out, z_out, out_dtype=out_dtype or q_dtype, axis=axis)

    return build_module(make, [np.zeros(shape, q_dtype)])


def test_equal_parameters_fold_to_the_input(rng):
    s, z = rng.uniform(0.01, 1, 4).astype("float32"), rng.integers(-50, 50, 4)
    mod = qnn.transform.FoldDequantizeQuantize()(_pair("int8", (3, 4), s, z))
    assert qnn_ops_in(mod) == []
    q = rng.integers(-128, 128, (3, 4)).astype("int8")
    np.testing.assert_array_equal(compile_and_run(mod, [q]), q)


@pytest.mark.parametrize(
    "kwargs",
    [dict(s2=0.3), dict(z2=5), dict(out_dtype="int16"), dict(s2="relu")],
    ids=["other-scale", "other-zero-point", "other-dtype", "op-between"],
)
def test_other_pairs_are_left_alone(kwargs):
    mod = _pair("int8", (3, 4), 0.25, 3, **kwargs)
    folded = qnn.transform.FoldDequantizeQuantize()(mod)
    assert qnn_ops_in(folded) == ["dequantize", "quantize"]
