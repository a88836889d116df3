"""The course's graded assignments: solutions pass; starters and wrong answers fail.

The reference solutions run here, so a change to d2lcc or TVM that breaks an
assignment fails CI. Each wrong answer below is a mistake a student could make
(it replaces one function of the reference solution), and its part must fail
while the other parts still pass.
"""

import re
from pathlib import Path

import numpy as np
import pytest
import tvm
from tvm import relax, te

from assignments import grading

ROOT = Path(__file__).resolve().parents[1]
COURSE = ROOT / "chapter_course" / "index.md"


def solution(name):
    return grading.load(ROOT / "assignments" / "solutions" / f"{name}.py")


@pytest.mark.parametrize("name", grading.NAMES)
def test_solution_passes(name):
    report = grading.check(name, solution(name), verbose=False)
    assert report.passed, str(report)
    assert sum(p.seconds for p in report.parts) < 20, str(report)


@pytest.mark.parametrize("name", grading.NAMES)
def test_starter_fails_every_part(name):
    report = grading.check(name, ROOT / "assignments" / "starters" / f"{name}.py",
                           verbose=False)
    assert report.earned == 0, str(report)


def _axpy_ignoring_alpha(n, alpha):
    a = te.placeholder((n,), "float32", name="A")
    b = te.placeholder((n,), "float32", name="B")
    return te.create_prim_func([a, b, te.compute((n,), lambda i: a[i] + b[i])])


def _host_assembly(func, name):
    return tvm.compile(func, target="llvm").mod.inspect_source("asm")


def _naive_softmax(cols):
    m = te.var("m")
    x = te.placeholder((m, cols), "float32", name="X")
    e = te.compute((m, cols), lambda i, j: te.exp(x[i, j]), name="E")
    k = te.reduce_axis((0, cols), name="k")
    s = te.compute((m,), lambda i: te.sum(e[i, k], axis=k), name="S")
    return te.create_prim_func([x, te.compute((m, cols), lambda i, j: e[i, j] / s[i])])


def _fixed_rows_softmax(cols):
    x = te.placeholder((4, cols), "float32", name="X")
    k = te.reduce_axis((0, cols), name="k")
    mx = te.compute((4,), lambda i: te.max(x[i, k], axis=k))
    e = te.compute((4, cols), lambda i, j: te.exp(x[i, j] - mx[i]))
    k2 = te.reduce_axis((0, cols), name="k2")
    s = te.compute((4,), lambda i: te.sum(e[i, k2], axis=k2))
    return te.create_prim_func([x, te.compute((4, cols), lambda i, j: e[i, j] / s[i])])


def _unvectorized_vadd(n):
    a = te.placeholder((n,), "float32", name="A")
    b = te.placeholder((n,), "float32", name="B")
    c = te.compute((n,), lambda i: a[i] + b[i], name="C")
    sch = tvm.s_tir.Schedule(te.create_prim_func([a, b, c]))
    outer, _ = sch.split(sch.get_loops(sch.get_sblock("C"))[0], factors=[None, 8])
    sch.parallel(outer)
    return sch


def _tiles_ignoring_weights(width, blocks, registers):
    tiles = [(ow, oc) for ow in range(1, width + 1) if width % ow == 0
             for oc in range(1, blocks + 1) if blocks % oc == 0
             if ow * oc <= registers]
    return max(tiles, key=lambda t: t[0] * t[1])


def _symmetric_params(w, axis):
    others = tuple(i for i in range(w.ndim) if i != axis % w.ndim)
    scales = np.abs(w).max(axis=others, keepdims=True) / 127.5
    return scales, np.full(scales.shape, 128)


def _mul_truncating(*args):
    mod = solution("qnn")["mul_module"](*args)
    text = mod.script().replace("R.round(", "R.floor(")
    return tvm.script.from_source(text)


def _merge_without_cleanup(mod):
    from tvm.relax.dpl import is_op, rewrite_call, wildcard

    inner = wildcard()
    twice = is_op("relax.permute_dims")(is_op("relax.permute_dims")(inner))
    out = tvm.IRModule(dict(mod.functions), attrs=mod.attrs)
    out["main"] = rewrite_call(twice, lambda call, m: m[inner], mod["main"])
    return out  # wrong twice: drops every pair, and leaves the dead first call


def _order_never_matters():
    x = relax.Var("x", relax.TensorType((3,), "float32"))
    bb = relax.BlockBuilder()
    with bb.function("main", [x]):
        with bb.dataflow():
            y = bb.emit_output(relax.op.add(x, relax.const(1.0, "float32")))
        bb.emit_func_output(y)
    return bb.get()


def _dot_without_saturation(a, b):
    return int(a.astype(np.int64) @ b.astype(np.int64))


def _dot_saturating_products(a, b):
    products = np.clip(a.astype(np.int32) * b.astype(np.int32), -32768, 32767)
    return int(products.sum())


def _isa_narrowest(features):
    return next((f for f in ("avx2", "avx_vnni", "avx512_vnni", "dotprod")
                 if f in features), None)


def _int8_dot_int16(k):
    a = te.placeholder((16, k), "uint8", name="A")
    b = te.placeholder((k,), "int8", name="B")
    q = te.reduce_axis((0, k), name="q")
    c16 = te.compute((16,), lambda i: te.sum(
        a[i, q].astype("int16") * b[q].astype("int16"), axis=q), name="C16")
    c = te.compute((16,), lambda i: c16[i].astype("int32"), name="C")
    return te.create_prim_func([a, b, c])


WRONG = [
    ("getting_started", "axpy", "axpy", _axpy_ignoring_alpha),
    ("getting_started", "assembly_for", "assembly_for", _host_assembly),
    ("operators", "softmax", "softmax", _naive_softmax),
    ("operators", "softmax", "softmax", _fixed_rows_softmax),
    ("operators", "schedule_vadd", "schedule_vadd", _unvectorized_vadd),
    ("networks", "padding_overhead", "padding_overhead", lambda c, lanes: lanes / c),
    ("networks", "pick_tiles", "pick_tiles", _tiles_ignoring_weights),
    ("qnn", "per_channel_params", "per_channel_params", _symmetric_params),
    ("qnn", "mul_module", "mul_module", _mul_truncating),
    ("passes", "merge_permutes", "merge_permutes", _merge_without_cleanup),
    ("passes", "order_matters", "order_matters", _order_never_matters),
    ("hardware", "avx2_dot", "avx2_dot", _dot_without_saturation),
    ("hardware", "avx2_dot", "avx2_dot", _dot_saturating_products),
    ("hardware", "best_int8_isa", "best_int8_isa", _isa_narrowest),
    ("hardware", "int8_dot", "int8_dot", _int8_dot_int16),
]


@pytest.mark.parametrize("name, part, function, wrong", WRONG,
                         ids=[f"{w[0]}-{w[3].__name__}" for w in WRONG])
def test_wrong_answer_fails_its_part_only(name, part, function, wrong):
    ns = dict(solution(name), **{function: wrong})
    report = grading.check(name, ns, verbose=False)
    by_name = {p.name: p for p in report.parts}
    assert by_name[part].earned == 0, str(report)
    assert by_name[part].message, str(report)
    others = [p for p in report.parts if p.name != part]
    assert all(p.earned == p.points for p in others), str(report)


def test_every_chapter_has_an_assignment():
    chapters = {grading.assignment(n).__name__.split(".")[-1] for n in grading.NAMES}
    book = {p.parent.name.removeprefix("chapter_")
            for p in ROOT.glob("chapter_*/index.md")}
    assert book - {"references", "course", "preface"} <= chapters


def test_assignments_cite_existing_exercises():
    labels = {}
    for md in ROOT.glob("chapter_*/*.md"):
        text = md.read_text()
        for label in re.findall(r":label:`(sec_\w+)`", text):
            exercises = text.partition("## Exercises")[2]
            labels[label] = len(re.findall(r"^\s*\d+\.\s", exercises, re.MULTILINE))
    for name in grading.NAMES:
        for label, number in grading.assignment(name).SOURCES:
            assert label in labels, f"{name}: no section {label}"
            assert 1 <= number <= labels[label], (
                f"{name}: {label} has no exercise {number}")


def test_student_notebook_grades_itself(tmp_path):
    nb = grading.student_notebook("networks")
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert any("check(" in c for c in code)
    sol = (ROOT / "assignments" / "solutions" / "networks.py").read_text()
    nb.cells[[c.cell_type for c in nb.cells].index("code")].source = sol
    import nbformat

    path = tmp_path / "networks.ipynb"
    nbformat.write(nb, path)
    assert grading.main(["networks", str(path)]) == 0


def test_course_objectives_name_a_section_and_an_exercise():
    text = COURSE.read_text().split("## Learning objectives")[1].split("\n## ")[0]
    rows = [" ".join(item.split()) for item in re.split(r"\n(?=\* |\*\*)", text)
            if item.startswith("* ")]
    assert len(rows) >= 12, "the list of learning objectives is missing"
    labels = set(re.findall(r":label:`(\w+)`", "".join(
        p.read_text() for p in ROOT.glob("chapter_*/*.md"))))
    for row in rows:
        refs = re.findall(r":numref:`(\w+)`", row)
        assert "taught in :numref:" in row, row
        assert refs and all(r in labels for r in refs), row
        assert re.search(r"Exercise \d|Assignment \d", row), row
