"""Every public function of d2lcc refuses bad arguments with a clear error.

The test walks every module under ``d2lcc/`` (``qnn`` and ``passes`` too) and
every public function and class defined there, and calls each with generic bad
arguments, one parameter at a time: None, a string, ``object()``, -1, 0,
2**40 and NaN, the other parameters filled with valid examples (the defaults,
or :data:`EXAMPLES`). A call passes when it raises ``TypeError`` or
``ValueError`` whose message names the parameter. It fails when it raises
anything else, hangs, or returns although the value is clearly out of range
(:func:`_clearly_bad` says which values those are). Exempt are the functions
of a module's ``__teaching__`` tuple (the book shows them verbatim, without
checks) and functions without parameters.

The calls run in a worker process (``python tests/test_public_api.py --worker
MODULE...``) that reports each result on a line; a call that does not finish
within :data:`CALL_TIMEOUT_S` is a hang: the worker is killed and a fresh one
goes on with the next call. Run one module with ``-k``, e.g.
``pytest tests/test_public_api.py -k bench``.
"""

from __future__ import annotations

import importlib
import inspect
import json
import math
import os
import pkgutil
import re
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CALL_TIMEOUT_S = 10.0
START_TIMEOUT_S = 60.0  # importing TVM on a busy machine
TOTAL_BUDGET_S = 240.0

BAD_VALUES = [
    ("None", lambda: None),
    ("'abc'", lambda: "abc"),
    ("object()", lambda: object()),
    ("-1", lambda: -1),
    ("0", lambda: 0),
    ("2**40", lambda: 2**40),
    ("nan", lambda: float("nan")),
]


def module_names() -> list[str]:
    """Every module under d2lcc/, found without importing any."""
    names = []

    def walk(path: Path, prefix: str) -> None:
        for info in pkgutil.iter_modules([str(path)]):
            name = f"{prefix}.{info.name}"
            names.append(name)
            if info.ispkg:
                walk(path / info.name, name)

    names.append("d2lcc")
    walk(ROOT / "d2lcc", "d2lcc")
    return sorted(names)


# --------------------------------------------------------------------------
# Valid example arguments (built lazily, inside the worker).
# --------------------------------------------------------------------------


def _f32(*shape):
    import numpy as np

    return np.random.default_rng(0).standard_normal(shape).astype("float32")


def _zeros(dtype, *shape):
    import numpy as np

    return np.zeros(shape, dtype)


def _var(shape, dtype, name="x"):
    from tvm import relax

    return relax.Var(name, relax.TensorType(shape, dtype))


def _prim_func():
    from tvm import te

    a = te.placeholder((8,), "float32", name="A")
    return te.create_prim_func([a, te.compute((8,), lambda i: a[i] + 1, name="B")])


def _ir_module():
    import tvm

    return tvm.IRModule({"main": _prim_func()})


def _relax_module():
    import tvm
    from tvm import relax

    bb = relax.BlockBuilder()
    x = _var((2, 4), "float32")
    with bb.function("main", [x]):
        with bb.dataflow():
            y = bb.emit_output(relax.op.add(x, x))
        bb.emit_func_output(y)
    return bb.get()


def _relax_function():
    return _relax_module()["main"]


def _host():
    import d2lcc.target

    return d2lcc.target.host()


def _compiled():
    import tvm

    mod, target = _relax_module(), _host()
    return dict(module=mod, executable=tvm.compile(mod, target=target), target=target)


def _legalized():
    from tvm import relax

    mod = relax.transform.LegalizeOps()(_relax_module())
    name = next(gv.name_hint for gv, f in mod.functions.items()
                if not isinstance(f, relax.Function))
    return dict(mod=mod, name=name, func=mod[name])


def _packed_conv():
    from tvm import te

    from d2lcc import nchwc

    data = te.placeholder((1, 1, 6, 6, 8), "float32", name="data")
    kernel = te.placeholder((1, 1, 3, 3, 8, 8), "float32", name="kernel")
    out = nchwc.conv2d_nchwc_compute(data, kernel, [1, 1], [1, 1, 1, 1])
    return te.create_prim_func([data, kernel, out])


def _row_times_kn_func():
    from tvm import te

    x = te.placeholder((1, 16), "float32", name="x")
    w = te.placeholder((16, 24), "float32", name="w")
    k = te.reduce_axis((0, 16), "k")
    y = te.compute((1, 24), lambda i, j: te.sum(x[i, k] * w[k, j], axis=k),
                   name="matmul")
    return dict(func=te.create_prim_func([x, w, y]))


def _conv_call():
    from tvm import relax

    bb = relax.BlockBuilder()
    bb.testing_scope([]).__enter__()  # legalization emits into the current scope
    x, w = _var((1, 8, 6, 6), "float32"), _var((8, 8, 3, 3), "float32", "w")
    return dict(bb=bb, call=bb.normalize(relax.op.nn.conv2d(x, w)))


_CACHE: dict = {}


def _cached(key, make):
    if key not in _CACHE:
        _CACHE[key] = make()
    return _CACHE[key]


def _shipped():
    from d2lcc import tuning

    def make():
        db = tuning.shipped_database("avx2")
        mod = tuning.matmul_workload(tuning.SHIPPED_SIZE)
        return db, mod, tuning.best_record(db, mod)

    return _cached("shipped", make)


def _tar():
    import struct
    import tarfile

    def make():
        folder = Path(tempfile.mkdtemp(prefix="d2lcc_api_"))
        ident = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
        (folder / "lib0.o").write_bytes(ident + struct.pack("<HH", 1, 62) + bytes(44))
        with tarfile.open(folder / "lib.tar", "w") as tar:
            tar.add(folder / "lib0.o", arcname="lib0.o")
        return folder / "lib.tar"

    return _cached("tar", make)


def _timing():
    from d2lcc import bench

    return bench.Timing("a", (1e-3,), 1)


def _qnn_call(op="quantize"):
    from d2lcc.qnn import api

    if op == "quantize":
        return api.quantize(_var((2, 4), "float32"), 0.5, 0)
    return api.dequantize(_var((2, 4), "int8"), 0.5, 0)


def _scoped_bb():
    from tvm import relax

    bb = relax.BlockBuilder()
    bb.testing_scope([]).__enter__()  # the helpers emit into the current scope
    return bb


def _qnn_calls(op):
    """A call of each dialect operator, on small int8 variables."""
    from d2lcc.qnn import api, api_elementwise

    a, b = _var((2, 4), "int8"), _var((2, 4), "int8", "y")
    if op in ("add", "mul"):
        return getattr(api_elementwise, op)(a, b, **_SCALES)
    if op == "concatenate":
        return api_elementwise.concatenate([a, b], [0.5, 0.5], [0, 0], 0.5, 0)
    if op == "requantize":
        return api.requantize(_var((2, 4), "int32"), 0.5, 0, 0.25, 0)
    if op == "dense":
        return api.dense(a, _var((3, 4), "int8", "w"), 0, 0, 0.5, 0.5)
    if op == "conv2d":
        return api.conv2d(_var((1, 3, 8, 8), "int8"), _var((4, 3, 3, 3), "int8", "w"),
                          0, 0, 0.5, 0.5)
    return _qnn_call(op)


def _no_kernels():
    """A Relax module without kernels: tuning it stops at once ("No tasks to
    tune"), so a bad value that gets past the checks shows as 'unnamed' without a
    real tuning run."""
    from tvm import relax

    bb = relax.BlockBuilder()
    x = _var((2, 4), "float32")
    with bb.function("main", [x]):
        bb.emit_func_output(x)
    return bb.get()


def _onnx_model():
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    inits = [numpy_helper.from_array(np.float32(0.5), "s"),
             numpy_helper.from_array(np.uint8(128), "z")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"])]
    graph = helper.make_graph(nodes, "g", [x], [y], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def _optimized():
    from d2lcc import compiler

    return _cached("optimized", lambda: compiler.optimize(_relax_module(),
                                                          schedules="dlight"))


def _checks(value):
    return lambda: dict(func="f", name="v", value=value)


_Q = dict(op="qnn.test", arg="a")
_SCALES = dict(lhs_scale=0.5, lhs_zero_point=0, rhs_scale=0.5, rhs_zero_point=0,
               output_scale=0.5, output_zero_point=0)

#: Valid arguments per function: ``{param: value}``, plus ``"*"`` (extra
#: positional arguments) and ``"**"`` (extra keyword arguments) where needed.
EXAMPLES = {
    "d2lcc.bench.Timing": lambda: dict(name="t", seconds=(1e-3,), number=1),
    "d2lcc.bench.measure": lambda: dict(fn=lambda: None, warmup=0, repeat=1, number=1),
    "d2lcc.bench.Comparison": lambda: dict(timings=[_timing()]),
    "d2lcc.bench.compare": lambda: {"candidates": {"a": lambda: None},
                                    "**": dict(repeat=1, number=1)},
    "d2lcc.bench.sweep": lambda: {"sizes": [1],
                                  "make_candidates": lambda n: {"a": lambda: None},
                                  "**": dict(repeat=1, number=1)},
    "d2lcc.bench.series": lambda: dict(results=[
        __import__("d2lcc.bench").bench.Comparison([_timing()], flops=1.0)]),
    "d2lcc.checks.integer": _checks(1),
    "d2lcc.checks.positive_int": _checks(1),
    "d2lcc.checks.nonnegative_int": _checks(1),
    "d2lcc.checks.multiple_of": lambda: dict(func="f", name="v", value=4, divisor=2,
                                             divisor_name="d"),
    "d2lcc.checks.real": _checks(1.0),
    "d2lcc.checks.boolean": _checks(True),
    "d2lcc.checks.one_of": lambda: dict(func="f", name="v", value=1, choices=[1]),
    "d2lcc.checks.string": _checks("s"),
    "d2lcc.checks.function": _checks(len),
    "d2lcc.checks.array": lambda: dict(func="f", name="v", value=_f32(2)),
    "d2lcc.checks.shape": _checks((1, 2)),
    "d2lcc.checks.legalize_rules": _checks({}),
    "d2lcc.machine.Machine": lambda: dict(cpu="c", arch="x86_64", cores=2,
                                          features=("avx2",), python="3", tvm="0",
                                          tvm_ffi="0"),
    "d2lcc.machine.parse_cpuinfo": lambda: dict(text="flags : avx2\n"),
    "d2lcc.target.make": lambda: dict(spec={"kind": "llvm"}),
    "d2lcc.target.named": lambda: dict(name="graviton2"),
    "d2lcc.target.resolve": lambda: dict(target={"kind": "llvm"}),
    "d2lcc.deploy.ElfHeader": lambda: dict(bits=64, endian="little", kind="executable",
                                           machine="x86-64"),
    "d2lcc.deploy.elf_header": lambda: dict(source=sys.executable),
    "d2lcc.deploy.parse_elf_header": lambda: dict(
        data=b"\x7fELF" + bytes([2, 1, 1]) + bytes(9) + bytes([1, 0, 62, 0])),
    "d2lcc.deploy.elf_headers_in_tar": lambda: dict(path=_tar()),
    "d2lcc.models.conv2d_numpy": lambda: dict(x=_f32(1, 3, 8, 8), w=_f32(4, 3, 3, 3),
                                              b=_f32(4)),
    "d2lcc.models.small_cnn_numpy": lambda: dict(
        x=_f32(1, 3, 32, 32),
        weights=__import__("d2lcc.models").models.small_cnn_weights()),
    "d2lcc.models.check_weights": lambda: dict(
        weights=__import__("d2lcc.models").models.small_cnn_weights()),
    "d2lcc.models.small_cnn_onnx": lambda: dict(
        weights=__import__("d2lcc.models").models.small_cnn_weights()),
    "d2lcc.plot.plot": lambda: dict(x=[1, 2], ys={"a": [1, 2]}, xlabel="n", ylabel="s"),
    "d2lcc.plot.bar": lambda: dict(labels=["a"], values=[1.0], xlabel="n", ylabel="s"),
    "d2lcc.tuning.matmul_workload": lambda: dict(n=8),
    "d2lcc.tuning.tune": lambda: dict(
        mod=__import__("d2lcc.tuning").tuning.matmul_workload(8), target=_host(),
        work_dir=tempfile.mkdtemp(prefix="d2lcc_api_"), trials=1),
    "d2lcc.tuning.build_candidate": lambda: dict(
        mod=__import__("d2lcc.tuning").tuning.matmul_workload(8), target=_host()),
    "d2lcc.tuning.load_database": lambda: dict(
        path=__import__("d2lcc.tuning").tuning.shipped_database_path()),
    "d2lcc.tuning.best_record": lambda: dict(database=_shipped()[0], mod=_shipped()[1]),
    "d2lcc.tuning.replay": lambda: dict(record=_shipped()[2], mod=_shipped()[1]),
    "d2lcc.tuning.apply_best": lambda: dict(database=_shipped()[0], mod=_shipped()[1],
                                            target=_host()),
    "d2lcc.tuning.check_applied": lambda: dict(applied=_shipped()[1],
                                               database=_shipped()[0],
                                               mod=_shipped()[1]),
    "d2lcc.tuning.record_seconds": lambda: dict(record=_shipped()[2]),
    "d2lcc.tuning.save_top": lambda: dict(database=_shipped()[0], mod=_shipped()[1],
                                          path=tempfile.mkdtemp(prefix="d2lcc_api_")),
    "d2lcc.compiler.import_model": lambda: dict(model=_relax_module()),
    "d2lcc.compiler.prepare": lambda: dict(model=_relax_module()),
    "d2lcc.compiler.schedule_small_kernels": lambda: dict(mod=_relax_module()),
    "d2lcc.compiler.shipped_network_database": lambda: dict(network="small_cnn"),
    "d2lcc.compiler.tuning_curve": lambda: dict(
        database_dir=__import__("d2lcc.tuning").tuning.shipped_database_path()),
    "d2lcc.compiler.applied_from_database": lambda: dict(
        prepared=_relax_module(), scheduled=_relax_module(), database=_shipped()[0]),
    "d2lcc.compiler.schedule_row_times_kn": _row_times_kn_func,
    "d2lcc.compiler.CompiledModel": _compiled,
    "d2lcc.compiler.KernelTime": lambda: dict(name="k", calls=1, seconds=1e-3,
                                              share=0.5),
    "d2lcc.compiler.replace_prim_func": _legalized,
    "d2lcc.fold.index_expr": lambda: dict(
        expr=__import__("tvm").tirx.Var("i", "int64") * 2,
        env={"i": __import__("numpy").arange(3)}),
    "d2lcc.nchwc.channel_block": lambda: dict(channels=16, lanes=8),
    "d2lcc.qnn.common.int_values": lambda: dict(func="f", name="values", values=[1, 2],
                                                lo=0, hi=3),
    "d2lcc.nchwc.conv2d_nchwc_compute": lambda: dict(
        data=__import__("tvm").te.placeholder((1, 1, 6, 6, 8)),
        kernel=__import__("tvm").te.placeholder((1, 1, 3, 3, 8, 8)),
        strides=[1, 1], padding=[1, 1, 1, 1]),
    "d2lcc.conv.has_block": lambda: dict(
        sch=__import__("tvm").s_tir.Schedule(_packed_conv()), name="conv"),
    "d2lcc.conv.inline_blocks": lambda: dict(
        sch=__import__("tvm").s_tir.Schedule(_packed_conv()), keep=("conv",)),
    "d2lcc.nchwc.layout_passes": lambda: dict(lanes=8),
    "d2lcc.nchwc.conv_extents": lambda: dict(func=_packed_conv()),
    "d2lcc.nchwc.default_tiles": lambda: dict(width=56, blocks=8),
    "d2lcc.nchwc.parallel_pad": lambda: dict(
        sch=__import__("tvm").s_tir.Schedule(_packed_conv())),
    "d2lcc.nchwc.pad_channels": lambda: dict(lanes=8),
    "d2lcc.nchwc.convert_layout_or_keep": lambda: dict(layouts=["NCHW8c", "OIHW8i8o"]),
    "d2lcc.nchwc.legalize_conv2d": _conv_call,
    "d2lcc.nchwc.schedule_conv": lambda: dict(func=_packed_conv()),
    "d2lcc.nchwc.schedule_module": lambda: dict(mod=_relax_module()),
    "d2lcc.zoo.path": lambda: dict(name="squeezenet"),
    "d2lcc.zoo.check_architecture": lambda: dict(name="squeezenet"),
    "d2lcc.zoo.load": lambda: dict(name="squeezenet", check=False),
    "d2lcc.zoo.data_input": lambda: dict(
        model=__import__("d2lcc.zoo").zoo.load("squeezenet", check=False)),
    "d2lcc.zoo.numpy_reference": lambda: dict(
        model=__import__("d2lcc.zoo").zoo.load("squeezenet", check=False)),
    "d2lcc.zoo.input_shape": lambda: dict(
        model=__import__("d2lcc.zoo").zoo.load("squeezenet", check=False)),
    "d2lcc.execute.build": lambda: dict(mod=_relax_module()),
    "d2lcc.execute.run": lambda: {"mod": _relax_module(), "*": (_f32(2, 4),)},
    "d2lcc.execute.run_prim_func": lambda: {"func": _prim_func(), "*": (_f32(8),),
                                            "out_shape": (8,)},
    "d2lcc.ir.op_names": lambda: dict(mod=_relax_module()),
    "d2lcc.ir.prim_func_count": lambda: dict(mod=_ir_module()),
    "d2lcc.ir.is_scheduled": lambda: dict(func=_prim_func()),
    "d2lcc.ir.rewrite_pass": lambda: dict(
        name="Keep", pattern=__import__("tvm.relax.dpl").relax.dpl.wildcard(),
        rewrite=lambda expr, matches: expr),
    "d2lcc.ir.single_op_module": lambda: {
        "build": __import__("tvm").relax.op.add,
        "*": (((4,), "float32"), ((4,), "float32"))},
    "d2lcc.cpu.Roofline": lambda: dict(peak_gflops=100.0, bandwidth_gbps=10.0),
    "d2lcc.cpu.intensity": lambda: dict(flops=1.0, nbytes=1.0),
    "d2lcc.cpu.plot_roofline": lambda: dict(
        roof=__import__("d2lcc.cpu").cpu.Roofline(100.0, 10.0)),
    "d2lcc.conv.conv2d_numpy": lambda: dict(x=_f32(1, 3, 8, 8), w=_f32(4, 3, 3, 3)),
    "d2lcc.conv.im2col": lambda: dict(x=_f32(3, 8, 8), kh=3, kw=3),
    "d2lcc.conv.conv2d_im2col": lambda: dict(x=_f32(1, 3, 8, 8), w=_f32(4, 3, 3, 3)),
    "d2lcc.conv.pack_data": lambda: dict(x=_f32(1, 4, 8, 8), block=2),
    "d2lcc.conv.unpack_data": lambda: dict(y=_f32(1, 2, 8, 8, 2)),
    "d2lcc.conv.pack_weight": lambda: dict(w=_f32(4, 4, 3, 3), in_block=2, out_block=2),
    "d2lcc.conv.largest_divisor": lambda: dict(n=8, limit=4),
    "d2lcc.conv.check_elements": lambda: dict(func_name="f", what="x", shape=(2, 2)),
    "d2lcc.conv.conv2d_nchw_te": lambda: dict(n=1, c=4, h=8, w=8, o=4, k=3, padding=1),
    "d2lcc.conv.conv2d_nchwc_te": lambda: dict(n=1, c=4, h=8, w=8, o=4, k=3, padding=1,
                                               block=2),
    "d2lcc.conv.schedule_tiled": lambda: dict(
        func=__import__("d2lcc.conv").conv.conv2d_nchw_te(1, 4, 8, 8, 4, 3, 1)),
    "d2lcc.conv.schedule_packed": lambda: dict(
        func=__import__("d2lcc.conv").conv.conv2d_nchwc_te(1, 4, 8, 8, 4, 3, 1, 2)),
    "d2lcc.conv.onnxruntime_conv2d": lambda: dict(w=_f32(4, 3, 3, 3), padding=1),
    "d2lcc.matmul.matmul_te": lambda: dict(n=64),
    "d2lcc.matmul.default": lambda: dict(n=64),
    "d2lcc.matmul.reorder": lambda: dict(n=64),
    "d2lcc.matmul.parallel": lambda: dict(n=64),
    "d2lcc.matmul.tiled": lambda: dict(n=64, mr=4, nr=16),
    "d2lcc.matmul.cache_write": lambda: dict(n=64, mr=4, nr=16),
    "d2lcc.matmul.packed_b": lambda: dict(n=64, mr=4, nr=16),
    "d2lcc.matmul.micro_kernel": lambda: dict(n=64, mr=4, nr=16),
    "d2lcc.matmul.KernelShape": lambda: dict(lanes=8, registers=16, mr=4, nr=16),
    "d2lcc.matmul.schedule": lambda: dict(step="default", n=64),
    "d2lcc.layers.max_pool2d_numpy": lambda: dict(x=_f32(1, 4, 8, 8), size=2),
    "d2lcc.layers.depthwise_conv2d_te": lambda: dict(n=1, c=4, h=8, w=8, k=3,
                                                     padding=1),
    "d2lcc.layers.max_pool2d_te": lambda: dict(n=1, c=4, h=8, w=8, size=2),
    "d2lcc.layers.batch_norm_te": lambda: dict(shape=(1, 4, 8, 8)),
    "d2lcc.layers.batch_norm_numpy": lambda: dict(
        x=_f32(1, 4, 8, 8), gamma=_f32(4), beta=_f32(4), mean=_f32(4),
        var=abs(_f32(4)) + 1),
    "d2lcc.layers.fold_batch_norm": lambda: dict(
        w=_f32(4, 3, 3, 3), gamma=_f32(4), beta=_f32(4), mean=_f32(4),
        var=abs(_f32(4)) + 1),
    "d2lcc.qnn.api.quantize": lambda: dict(data=_var((2, 4), "float32"), scale=0.5,
                                           zero_point=0),
    "d2lcc.qnn.api.dequantize": lambda: dict(data=_var((2, 4), "int8"), scale=0.5,
                                             zero_point=0),
    "d2lcc.qnn.api.requantize": lambda: dict(
        data=_var((2, 4), "int32"), input_scale=0.5, input_zero_point=0,
        output_scale=0.25, output_zero_point=0),
    "d2lcc.qnn.api.conv2d": lambda: dict(
        data=_var((1, 3, 8, 8), "int8"), weight=_var((4, 3, 3, 3), "int8", "w"),
        input_zero_point=0, kernel_zero_point=0, input_scale=0.5, kernel_scale=0.5),
    "d2lcc.qnn.api.dense": lambda: dict(
        data=_var((2, 4), "int8"), weight=_var((3, 4), "int8", "w"),
        input_zero_point=0, kernel_zero_point=0, input_scale=0.5, kernel_scale=0.5),
    "d2lcc.qnn.api_elementwise.add": lambda: dict(
        lhs=_var((2, 4), "int8"), rhs=_var((2, 4), "int8", "y"), **_SCALES),
    "d2lcc.qnn.api_elementwise.mul": lambda: dict(
        lhs=_var((2, 4), "int8"), rhs=_var((2, 4), "int8", "y"), **_SCALES),
    "d2lcc.qnn.api_elementwise.concatenate": lambda: dict(
        tensors=[_var((2, 4), "int8"), _var((2, 4), "int8", "y")],
        input_scales=[0.5, 0.5], input_zero_points=[0, 0], output_scale=0.5,
        output_zero_point=0),
    "d2lcc.qnn.onnxrt.quantize_linear": lambda: dict(x=_f32(1, 3, 4, 4), scale=0.5,
                                                     zero_point=0),
    "d2lcc.qnn.onnxrt.dequantize_linear": lambda: dict(
        q=_zeros("uint8", 1, 3, 4, 4), scale=0.5, zero_point=0),
    "d2lcc.qnn.onnxrt.qlinear_matmul": lambda: dict(
        a=_zeros("uint8", 2, 4), a_scale=0.5, a_zero_point=0, b=_zeros("uint8", 4, 3),
        b_scale=0.5, b_zero_point=0, y_scale=0.5, y_zero_point=0),
    "d2lcc.qnn.onnxrt.qlinear_conv": lambda: dict(
        x=_zeros("uint8", 1, 3, 8, 8), x_scale=0.5, x_zero_point=0,
        w=_zeros("uint8", 4, 3, 3, 3), w_scale=0.5, w_zero_point=0, y_scale=0.5,
        y_zero_point=0),
    "d2lcc.qnn.reference.quantize": lambda: dict(data=_f32(2, 4), scale=0.5,
                                                 zero_point=0),
    "d2lcc.qnn.reference.dequantize": lambda: dict(data=_zeros("int8", 2, 4),
                                                   scale=0.5, zero_point=0),
    "d2lcc.qnn.reference.requantize": lambda: dict(
        data=_zeros("int32", 2, 4), input_scale=0.5, input_zero_point=0,
        output_scale=0.25, output_zero_point=0),
    "d2lcc.qnn.reference.conv2d": lambda: dict(
        data=_zeros("int8", 1, 3, 8, 8), weight=_zeros("int8", 4, 3, 3, 3),
        input_zero_point=0, kernel_zero_point=0),
    "d2lcc.qnn.reference.dense": lambda: dict(
        data=_zeros("int8", 2, 4), weight=_zeros("int8", 3, 4), input_zero_point=0,
        kernel_zero_point=0),
    "d2lcc.qnn.reference.add": lambda: dict(lhs=_zeros("int8", 2, 4),
                                            rhs=_zeros("int8", 2, 4), **_SCALES),
    "d2lcc.qnn.reference.mul": lambda: dict(lhs=_zeros("int8", 2, 4),
                                            rhs=_zeros("int8", 2, 4), **_SCALES),
    "d2lcc.qnn.reference.concatenate": lambda: dict(
        tensors=[_zeros("int8", 2, 4), _zeros("int8", 2, 4)], input_scales=[0.5, 0.5],
        input_zero_points=[0, 0], output_scale=0.5, output_zero_point=0),
    "d2lcc.qnn.fixed_point.fixed_point_multiplier": lambda: dict(multiplier=0.5),
    "d2lcc.qnn.lower.lower_quantize": lambda: dict(
        bb=__import__("tvm").relax.BlockBuilder(), call=_qnn_call()),
    "d2lcc.qnn.lower.lower_dequantize": lambda: dict(
        bb=__import__("tvm").relax.BlockBuilder(), call=_qnn_call("dequantize")),
    "d2lcc.qnn.lower.is_zero": lambda: dict(expr=__import__("tvm").relax.const(0)),
    "d2lcc.qnn.ops.op_name": lambda: dict(name="quantize"),
    "d2lcc.qnn.ops.get": lambda: dict(name="quantize"),
    "d2lcc.qnn.ops.is_qnn_call": lambda: dict(expr=_qnn_call()),
    # These helpers name the caller's argument (``arg``): let it be the one varied.
    "d2lcc.qnn.params.dtype_range": lambda: dict(dtype="int8", op="qnn.test",
                                                 arg="dtype"),
    "d2lcc.qnn.params.constant_value": lambda: dict(
        expr=__import__("tvm").relax.const(1.0)),
    "d2lcc.qnn.params.scale": lambda: dict(value=0.5, op="qnn.test", arg="value"),
    "d2lcc.qnn.params.zero_point": lambda: dict(value=0, dtype="int8", op="qnn.test",
                                                arg="value"),
    "d2lcc.qnn.params.as_array": lambda: dict(expr=__import__("tvm").relax.const(1.0),
                                              op="qnn.test", arg="expr"),
    "d2lcc.qnn.params.scale_ratio": lambda: dict(input_scale=0.5, output_scale=0.25),
    "d2lcc.qnn.params.requantize_multiplier": lambda: dict(input_scale=0.5,
                                                           output_scale=0.25),
    "d2lcc.qnn.shapes.conv2d_output_shape": lambda: dict(
        data=[1, 3, 8, 8], weight=[4, 3, 3, 3], strides=[1, 1], padding=[0, 0, 0, 0],
        dilation=[1, 1]),
    "d2lcc.qnn.shapes.tensor_info": lambda: dict(expr=_var((2, 4), "int8"),
                                                 op="qnn.test", arg="expr"),
    "d2lcc.qnn.shapes.check_dtype": lambda: dict(dtype="int8", allowed=["int8"], **_Q),
    "d2lcc.qnn.shapes.normalize_axis": lambda: dict(axis=-1, ndim=2, op="qnn.test"),
    "d2lcc.qnn.shapes.pair": lambda: dict(value=1, op="qnn.test", arg="value"),
    "d2lcc.qnn.transform.rewrite_calls": lambda: dict(mod=_relax_module(), rules={}),
    "d2lcc.passes.analysis.count_relax_bindings": lambda: dict(mod=_relax_module()),
    "d2lcc.passes.analysis.count_tir_loops": lambda: dict(mod=_ir_module()),
    "d2lcc.passes.analysis.count_memory_accesses": lambda: dict(func=_prim_func()),
    "d2lcc.passes.levels.with_opt_level": lambda: dict(
        inner=__import__("tvm").relax.transform.FoldConstant(), opt_level=2),
    "d2lcc.passes.pipeline.cpu_pipeline_with": lambda: dict(target=_host()),
    "d2lcc.passes.timing.PassTime": lambda: dict(depth=1, name="p", total_s=1.0,
                                                 self_s=0.5),
    "d2lcc.passes.timing.parse_pass_timing": lambda: dict(report=""),
    "d2lcc.passes.relax_simplify.simplify_identity_arith_dpl": lambda: dict(
        func=_relax_function()),
    "d2lcc.compiler.KernelTime": lambda: dict(name="k", calls=1, seconds=1.0,
                                              share=0.5),
    "d2lcc.compiler.lower_passes": lambda: dict(target=_host()),
    "d2lcc.compiler.build": lambda: dict(scheduled=_optimized()),
    "d2lcc.compiler.optimize": lambda: dict(model=_relax_module(), schedules="none"),
    "d2lcc.compiler.compile": lambda: dict(model=_relax_module(), schedules="none"),
    "d2lcc.compile": lambda: dict(model=_relax_module(), schedules="none"),
    "d2lcc.compiler.tune_network": lambda: dict(
        mod=_no_kernels(), target=_host(), work_dir=tempfile.mkdtemp(prefix="d2lcc_"),
        trials=1),
    "d2lcc.conv.pad_spatial": lambda: dict(
        x=__import__("tvm").te.placeholder((1, 2, 4, 4)), padding=1),
    "d2lcc.conv.runner": lambda: {"mod": _prim_func(), "*": (_f32(8),),
                                  "out_shape": (8,)},
    "d2lcc.conv.schedule_block": lambda: dict(
        func_name="f", func=__import__("d2lcc.conv").conv.conv2d_nchw_te(
            1, 4, 8, 8, 4, 3, 1), block="conv", n_loops=7),
    "d2lcc.layers.depthwise_conv2d_numpy": lambda: dict(x=_f32(1, 4, 8, 8),
                                                        w=_f32(4, 3, 3), padding=1),
    "d2lcc.layers.schedule_batch_norm": lambda: dict(
        func=__import__("d2lcc.layers").layers.batch_norm_te((1, 4, 8, 8))),
    "d2lcc.layers.schedule_depthwise": lambda: dict(
        func=__import__("d2lcc.layers").layers.depthwise_conv2d_te(1, 4, 8, 8, 3, 1)),
    "d2lcc.layers.schedule_pool": lambda: dict(
        func=__import__("d2lcc.layers").layers.max_pool2d_te(1, 4, 8, 8, 2)),
    "d2lcc.matmul.build": lambda: dict(sch=_ir_module()),
    "d2lcc.passes.source.source": lambda: dict(name="PassRecorder"),
    "d2lcc.qnn.common.accumulator_bound": lambda: dict(
        k=1, data_dtype="uint8", input_zero_point=0, weight_dtype="int8",
        kernel_zero_points=0),
    "d2lcc.qnn.common.check_accumulator": lambda: dict(
        op="qnn.test", k=1, data_dtype="uint8", input_zero_point=0,
        weight_dtype="int8", kernel_zero_points=0),
    "d2lcc.qnn.common.along": lambda: dict(
        bb=_scoped_bb(), expr=__import__("tvm").relax.const([1, 2, 3, 4], "int32"),
        axis=1, ndim=2, dtype="int32"),
    "d2lcc.qnn.common.centered": lambda: dict(
        bb=_scoped_bb(), x=_var((2, 4), "int8"),
        zero_point=__import__("tvm").relax.const(1, "int8"), axis=1, ndim=2),
    "d2lcc.qnn.common.saturate": lambda: dict(
        bb=_scoped_bb(), x=_var((2, 4), "float32"),
        zero_point=__import__("tvm").relax.const(1, "int8"), dtype="int8", axis=1,
        ndim=2),
    "d2lcc.qnn.common.check_rule_args": lambda: dict(
        func="qnn.test", bb=_scoped_bb(), call=_qnn_call()),
    "d2lcc.qnn.common.const_along": lambda: dict(values=[1, 2], axis=1, ndim=2,
                                                 dtype="int32"),
    "d2lcc.qnn.common.register_legalize": lambda: dict(name="quantize"),
    "d2lcc.qnn.fixed_point.lower_rescale": lambda: dict(
        bb=_scoped_bb(), x=_var((2, 4), "int64"), mantissa=_zeros("int64") + 2**30,
        shift=_zeros("int64") + 31, rounding="TONEAREST", axis=1, ndim=2),
    "d2lcc.qnn.fixed_point.rescale_reference": lambda: dict(
        x=_zeros("int32", 4) + 3, mantissa=_zeros("int64") + 2**30,
        shift=_zeros("int64") + 31),
    "d2lcc.qnn.legalize.shift": lambda: dict(bb=_scoped_bb(), x=_var((2, 4), "int8"),
                                             offset=128, dtype="uint8"),
    "d2lcc.qnn.onnx_import.from_onnx": lambda: dict(model=_onnx_model()),
    **{f"d2lcc.qnn.ops.infer_{op}": (lambda op=op: dict(call=_qnn_calls(op))) for op in
       ("quantize", "dequantize", "requantize", "conv2d", "dense", "concatenate")},
    "d2lcc.qnn.ops.infer_binary": lambda: dict(call=_qnn_calls("add")),
    "d2lcc.qnn.ops.legalize": lambda: dict(bb=_scoped_bb(), call=_qnn_call()),
    "d2lcc.qnn.ops.make_call": lambda: dict(
        name="dequantize", args=[_var((2, 4), "int8"),
                                 __import__("tvm").relax.const(0.5),
                                 __import__("tvm").relax.const(0, "int8")],
        attrs={"axis": -1}),
    "d2lcc.qnn.params.scale_values": lambda: dict(value=0.5, op="qnn.test",
                                                  arg="value"),
    "d2lcc.qnn.params.zero_point_values": lambda: dict(
        value=0, dtype="int8", op="qnn.test", arg="value"),
    "d2lcc.qnn.shapes.expr_type": lambda: dict(expr=_var((2, 4), "int8"),
                                               op="qnn.test", arg="expr"),
    "d2lcc.qnn.simplify.fold_dequantize_quantize": lambda: dict(
        bb=_scoped_bb(), call=_qnn_call(), lookup=lambda expr: None),
}

#: Functions whose all-valid call is too slow to make as a sanity check.
NO_BASELINE = {"d2lcc.tuning.tune", "d2lcc.cpu.peak_gflops", "d2lcc.cpu.bandwidth_gbps",
               "d2lcc.compiler.tune_network", "d2lcc.compiler.optimize",
               "d2lcc.compiler.compile"}

_CHECKS = ("integer", "positive_int", "nonnegative_int", "multiple_of", "real",
           "legalize_rules",
           "boolean", "one_of", "string", "function", "array", "shape")
#: Parameters not varied, with the reason.
NOT_VARIED = {
    # d2lcc.checks is configured by d2lcc's own code with literals (func, name,
    # minimum, ndim, dtypes...); only the checked `value` comes from a reader,
    # and its errors name the caller's argument (the `name` example, "v").
    **{f"d2lcc.checks.{f}": {"func", "name", "minimum", "maximum", "positive",
                             "allow_inf", "choices", "ndim", "dtypes", "finite",
                             "nonempty", "allow_zero"} for f in _CHECKS},
    # multiple_of takes two ints its callers have already checked (its docstring).
    "d2lcc.checks.multiple_of": {"func", "name", "value", "divisor", "divisor_name"},
}
#: Where a parameter's errors name another word than the parameter itself.
MESSAGE_NAME = {f"d2lcc.checks.{f}": {"value": "v"} for f in _CHECKS}

# --------------------------------------------------------------------------
# Which accepted values count as silent acceptance of a clearly bad value.
# --------------------------------------------------------------------------

#: Parameters that take anything: predicates ("is this a ...?") and the checks.
ACCEPTS_ANY = {
    "d2lcc.qnn.ops.is_qnn_call": {"expr"},
    "d2lcc.qnn.lower.is_zero": {"expr"},
    "d2lcc.qnn.params.constant_value": {"expr"},
    # A scalar parameter serves any number of channels, zero included.
    "d2lcc.qnn.params.scale": {"channels"},
    "d2lcc.qnn.params.zero_point": {"channels"},
    "d2lcc.qnn.params.scale_values": {"channels"},
    "d2lcc.qnn.params.zero_point_values": {"channels"},
    # Any integers are valid bounds; an empty range is refused, naming hi.
    "d2lcc.qnn.common.int_values": {"lo", "hi"},
    # A reduction over k = 0 terms is valid (the sums are zero), and any k has a bound.
    "d2lcc.qnn.common.accumulator_bound": {"k"},
    "d2lcc.qnn.common.check_accumulator": {"k"},
    # NaN quantizes to the zero point, as documented.
    "d2lcc.qnn.reference.quantize": {"data"},
    **{f"d2lcc.checks.{f}": {"value"} for f in ("integer", "real", "boolean",
                                                "one_of", "string", "function",
                                                "array", "shape")},
}
def _merge_example_files() -> None:
    """Add the tables of ``tests/api_examples/*.py`` to the ones above.

    Each file serves one group of modules and may define ``EXAMPLES``,
    ``NO_BASELINE`` and ``ACCEPTS_ANY`` like this file does; a function may
    appear in one place only.
    """
    import runpy

    for path in sorted((ROOT / "tests" / "api_examples").glob("*.py")):
        found = runpy.run_path(str(path))
        for name, table in (("EXAMPLES", EXAMPLES), ("ACCEPTS_ANY", ACCEPTS_ANY)):
            extra = found.get(name, {})
            clash = set(extra) & set(table)
            if clash:
                raise RuntimeError(f"{path.name}: {name} entries already defined: "
                                   f"{sorted(clash)}")
            table.update(extra)
        NO_BASELINE.update(found.get("NO_BASELINE", set()))


_merge_example_files()

#: Integer parameters that may be negative (axes, zero points, shifts).
SIGNED = re.compile(r"(^|_)(axis|zero_point|zero_points|offset|shift|minimum|maximum|"
                    r"reference|value)$")
#: Integer parameters for which 0 is in range.
ZERO_OK = re.compile(r"(^|_)(padding|pad|seed|warmup|pack_a|pack_b|opt_level|"
                     r"tune_trials|depth|level)$")
#: Parameters for which 2**40 is in range.
HUGE_OK = re.compile(r"(^|_)(seed|flops|nbytes|minimum|maximum|value|peak_gflops|"
                     r"bandwidth_gbps|total_s|self_s|seconds)$")
#: String parameters that take one of a few names (so 'abc' is out of range).
ENUM = re.compile(r"(^|_)(dtype|rounding|metric|isa|step|xscale|yscale|feature|"
                  r"endian|layout|compute|level)$")
#: Parameters whose value must be > 0 (scales, rates, sizes).
POSITIVE = re.compile(r"(^|_)(scale|scales|flops|nbytes|peak_gflops|"
                      r"bandwidth_gbps|min_round_s|multiplier)$")
_OBJECT_TYPES = re.compile(r"ndarray|Expr|IRModule|Module|PrimFunc|Function|Callable|"
                           r"Sequence|Mapping|dict|list|tuple|Target|Pass|BlockBuilder|"
                           r"Call|Timing|Comparison|Roofline|KernelShape|bytes|Path")


def _clearly_bad(qualname: str, param: inspect.Parameter, label: str) -> bool:
    """Whether returning normally on this value means a bad value got through."""
    name, ann = param.name, str(param.annotation)
    ann = "" if param.annotation is inspect.Parameter.empty else ann
    if name in ACCEPTS_ANY.get(qualname, ()) or ann.strip("'\"") == "Any":
        return False
    optional = param.default is None or "None" in ann or "Optional" in ann
    default = param.default
    is_bool = isinstance(default, bool) or ann == "bool"
    is_int = not is_bool and ("int" in ann.split("|")[0] or (
        type(default) is int and not ann))
    is_float = "float" in ann or type(default) is float or bool(POSITIVE.search(name))
    is_str = ("str" in ann and not is_int) or (type(default) is str and not ann)
    is_object = bool(_OBJECT_TYPES.search(ann)) and not (is_int or is_float or is_str)
    number = is_int or is_float
    if label == "object()":
        return True
    if label == "None":
        return not optional
    if label == "'abc'":
        if "str" in ann or is_str:  # a name, a path, a symbolic size...
            return bool(ENUM.search(name))
        return number or is_bool or is_object
    # -1, 0, 2**40, nan
    if is_str or is_object or is_bool:
        return True
    if not number:
        return label == "nan"
    if label == "nan":
        return True
    if label == "-1":
        return not SIGNED.search(name)
    if label == "0":
        return bool(POSITIVE.search(name)) or (is_int and not (
            ZERO_OK.search(name) or SIGNED.search(name)))
    return is_int and not HUGE_OK.search(name)  # 2**40


# --------------------------------------------------------------------------
# The worker: enumerate the cases of some modules and run them, one per line.
# --------------------------------------------------------------------------


def _public(module):
    teaching = set(getattr(module, "__teaching__", ()))
    for name, obj in sorted(vars(module).items()):
        if name.startswith("_") or name in teaching:
            continue
        if not (inspect.isfunction(obj) or inspect.isclass(obj)):
            continue
        if getattr(obj, "__module__", None) != module.__name__:
            continue
        try:
            sig = inspect.signature(obj)
        except (TypeError, ValueError):
            continue
        params = [p for p in sig.parameters.values() if not p.name.startswith("_")
                  and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        if params:
            yield f"{module.__name__}.{name}", obj, sig, params


def _cases(modules):
    for module in modules:
        for qualname, obj, sig, params in _public(module):
            yield qualname, obj, sig, params, None, None  # the all-valid baseline
            skip = NOT_VARIED.get(qualname, set())
            for param in params:
                if param.name in skip:
                    continue
                for label, make in BAD_VALUES:
                    yield qualname, obj, sig, params, param, (label, make)


def _same(a, b) -> bool:
    try:
        if isinstance(a, float) and isinstance(b, float):
            return a == b or (math.isnan(a) and math.isnan(b))
        return type(a) is type(b) and bool(a == b)
    except Exception:
        return False


def _call(qualname, obj, sig, varied, bad_value):
    example = EXAMPLES.get(qualname, lambda: {})()
    extra_pos, extra_kw = example.pop("*", ()), example.pop("**", {})
    args, kwargs, missing = [], dict(extra_kw), []
    for p in sig.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            if p.kind == p.VAR_POSITIONAL:
                args.extend(extra_pos)
            continue
        if varied is not None and p.name == varied.name:
            value = bad_value
        elif p.name in example:
            value = example[p.name]
        elif p.default is not p.empty:
            value = p.default
        else:
            value = None
            missing.append(p.name)
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            args.append(value)
        else:
            kwargs[p.name] = value
    if extra_pos and not any(p.kind == p.VAR_POSITIONAL
                             for p in sig.parameters.values()):
        raise RuntimeError(f"{qualname}: example has '*' but no *args")
    obj(*args, **kwargs)
    return missing


def _names_param(message: str, word: str) -> bool:
    return re.search(rf"(?<![\w.]){re.escape(word)}(?!\w)", message) is not None


def worker(names, skip_to: int) -> None:
    """Run the cases of the modules ``names`` from index ``skip_to``, a line each."""
    import matplotlib

    matplotlib.use("Agg")
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything a function prints goes to stderr, not the protocol
    os.chdir(tempfile.mkdtemp(prefix="d2lcc_api_"))
    loose: set = set()  # functions whose example itself was refused
    modules = []
    for name in names:
        try:
            modules.append(importlib.import_module(name))
        except Exception as err:  # noqa: BLE001 - report, test the other modules
            print(json.dumps({"start": -1, "func": f"{name}.<import>", "param": None,
                              "value": None}), file=proto)
            print(json.dumps({"index": -1, "outcome": "crash",
                              "detail": f"import failed: {err!r}"[:300]}), file=proto)
    for index, case in enumerate(_cases(modules)):
        qualname, obj, sig, params, param, bad = case
        if param is None and qualname in NO_BASELINE:
            continue
        if index < skip_to:
            if param is None:  # after a restart: learn again which examples fail
                try:
                    _call(qualname, obj, sig, None, None)
                except BaseException:  # noqa: BLE001
                    loose.add(qualname)
            continue
        if index % 50 == 0:
            import matplotlib.pyplot as plt

            plt.close("all")
        label = None if bad is None else bad[0]
        print(json.dumps({"start": index, "func": qualname,
                          "param": None if param is None else param.name,
                          "value": label}), file=proto)
        result = {"index": index}
        try:
            example = EXAMPLES.get(qualname, lambda: {})()
        except Exception as err:  # noqa: BLE001 - this test's own example is broken
            result.update(outcome="example-broken", detail=f"{err!r}"[:300])
            print(json.dumps(result), file=proto)
            continue
        try:
            value = None if bad is None else bad[1]()
            if param is not None and param.name in example and _same(
                    example[param.name], value):
                result["outcome"] = "skipped"
            elif param is not None and param.default is not param.empty and _same(
                    param.default, value):
                result["outcome"] = "skipped"
            elif (param is not None and qualname in NO_BASELINE
                  and not _clearly_bad(qualname, param, label)):
                result["outcome"] = "skipped"  # an in-range value: a slow, real run
            else:
                missing = _call(qualname, obj, sig, param, value)
                if param is None:
                    result["outcome"] = "baseline-ok"
                elif missing or qualname in loose:
                    result["outcome"] = "accepted-unknown"
                elif _clearly_bad(qualname, param, label):
                    result["outcome"] = "accepted"
                else:
                    result["outcome"] = "accepted-ok"
        except (TypeError, ValueError) as err:
            message = str(err)
            result["detail"] = f"{type(err).__name__}: {message}"[:300]
            if param is None:
                loose.add(qualname)
                result["outcome"] = "baseline-refused"
            else:
                word = MESSAGE_NAME.get(qualname, {}).get(param.name, param.name)
                others = [p.name for p in params if p.name != param.name]
                if _names_param(message, word):
                    result["outcome"] = "clear"
                elif qualname in loose or qualname not in EXAMPLES:
                    named = any(_names_param(message, o) for o in others)
                    result["outcome"] = "clear-other" if named else "unnamed"
                else:
                    result["outcome"] = "unnamed"
        except BaseException as err:  # noqa: BLE001 - any other is a finding
            result["detail"] = f"{type(err).__name__}: {err}"[:300]
            if param is None:
                loose.add(qualname)
                result["outcome"] = "baseline-refused"
            else:
                result["outcome"] = "crash"
        print(json.dumps(result), file=proto)
    print(json.dumps({"done": True}), file=proto)


# --------------------------------------------------------------------------
# The parent: run workers, restart after a hang, collect and report.
# --------------------------------------------------------------------------

FAILURES = ("accepted", "unnamed", "crash", "hang", "example-broken")


def run_cases(modules: list[str]) -> list[dict]:
    results, skip_to, started = [], 0, time.monotonic()
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=str(ROOT))
    while True:
        cmd = [sys.executable, __file__, "--worker", str(skip_to), *modules]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True, cwd=ROOT, env=env)
        current, deadline = None, time.monotonic() + START_TIMEOUT_S
        hung = False
        try:
            while True:
                if time.monotonic() - started > TOTAL_BUDGET_S:
                    raise TimeoutError
                ready, _, _ = select.select([proc.stdout], [], [],
                                            max(0.0, deadline - time.monotonic()))
                if not ready:
                    hung = True
                    break
                line = proc.stdout.readline()
                if not line:
                    break  # the worker died
                row = json.loads(line)
                if row.get("done"):
                    proc.wait()
                    return results
                if "start" in row:
                    current = row
                    deadline = time.monotonic() + CALL_TIMEOUT_S
                    continue
                results.append({**current, **row})
                current = None
        except TimeoutError:
            proc.kill()
            results.append({"func": "(all)", "param": None, "value": None,
                            "outcome": "hang",
                            "detail": f"the whole run passed {TOTAL_BUDGET_S} s"})
            return results
        proc.kill()
        proc.wait()
        if current is None:
            results.append({"func": "(worker)", "param": None, "value": None,
                            "outcome": "crash",
                            "detail": f"worker exited (status {proc.returncode}) "
                                      "between calls"})
            return results
        outcome = "hang" if hung else "crash"
        detail = (f"no answer within {CALL_TIMEOUT_S} s" if hung
                  else f"the process died (status {proc.returncode})")
        results.append({**current, "index": current["start"], "outcome": outcome,
                        "detail": detail})
        skip_to = current["start"] + 1


def _summary(results: list[dict]) -> str:
    cases = [r for r in results if r.get("param") is not None or r["outcome"] in (
        "hang", "crash")]
    judged = [r for r in cases if r["outcome"] != "skipped"]
    count = {o: sum(r["outcome"] == o for r in judged) for o in (
        "clear", "clear-other", "accepted-ok", "accepted-unknown", *FAILURES)}
    refused = count["clear"] + count["clear-other"] + count["unnamed"]
    lines = [f"{len(judged)} bad-argument calls: " + ", ".join(
        f"{k} {v}" for k, v in count.items() if v)]
    should = refused + count["accepted"] + count["crash"] + count["hang"]
    if should:
        lines.append(f"clear TypeError/ValueError naming the argument: "
                     f"{100 * count['clear'] / should:.0f}% of calls that should fail")
    bad_examples = sorted({r["func"] for r in results
                           if r["outcome"] == "baseline-refused"})
    if bad_examples:
        lines.append("examples refused by the function itself (its checks loosened): "
                     + ", ".join(bad_examples))
    for r in results:
        if r["outcome"] in FAILURES:
            lines.append(f"FAIL {r['func']}({r.get('param')}={r.get('value')}): "
                         f"{r['outcome']}: {r.get('detail', 'returned normally')}")
    return "\n".join(lines)


def _selected_modules(session) -> list[str]:
    names = []
    for item in session.items:
        spec = getattr(item, "callspec", None)
        if spec is not None and "module" in spec.params and item.name.startswith(
                "test_public_functions_refuse_bad_arguments"):
            names.append(spec.params["module"])
    return names


@pytest.fixture(scope="module")
def api_results(request):
    modules = _selected_modules(request.session)
    results = run_cases(modules)
    print("\n" + _summary(results))
    by_module: dict = {}
    for r in results:
        owner = max((m for m in modules if r["func"].startswith(m + ".")),
                    key=len, default="(all)")
        by_module.setdefault(owner, []).append(r)
    return by_module


@pytest.mark.parametrize("module", module_names())
def test_public_functions_refuse_bad_arguments(module, api_results):
    own = api_results.get(module, []) + api_results.get("(all)", [])
    failures = [r for r in own if r["outcome"] in FAILURES]
    assert not failures, f"{module}:\n" + _summary(own)


def test_every_teaching_function_exists():
    for name in module_names():
        module = importlib.import_module(name)
        for fn in getattr(module, "__teaching__", ()):
            assert callable(getattr(module, fn, None)), f"{name}.{fn}"


if __name__ == "__main__" and len(sys.argv) > 2 and sys.argv[1] == "--worker":
    sys.path.insert(0, str(ROOT))
    worker(sys.argv[3:], int(sys.argv[2]))
