"""Our own Relax pipeline: extra passes in front of TVM's CPU pipeline.

``relax.get_default_pipeline(target)`` for a CPU target is one module pass;
to slot passes into it we rebuild it from its four stages (library dispatch,
legalization and fusion, dataflow lowering, finalization), which live in
``tvm.relax.backend.cpu_generic.pipeline``. (In TVM 0.27 the target-dispatching
``relax.pipeline.dataflow_lower_passes`` fails for CPU targets, because
``cpu_generic`` does not export that stage; we import the stages directly.)
"""

from __future__ import annotations

from typing import Sequence

import tvm

from .. import checks


def cpu_pipeline_with(target: "tvm.target.Target",
                      before: Sequence["tvm.transform.Pass"] = (),
                      name: str = "BookPipeline") -> "tvm.transform.Pass":
    """Return a Relax pipeline that runs ``before`` and then TVM's CPU pipeline stages.

    Parameters
    ----------
    target
        A :class:`tvm.target.Target` of kind ``llvm`` (e.g. ``d2lcc.target.host()``).
    before
        A list or tuple of passes to run first, e.g.
        ``[d2lcc.qnn.transform.Canonicalize()]``.
    name
        The name of the returned module pass.
    """
    from tvm.relax.backend.cpu_generic import pipeline as cpu

    func = "cpu_pipeline_with"
    if not isinstance(target, tvm.target.Target):
        raise TypeError(f"{func}: target must be a tvm.target.Target, "
                        f"got {type(target).__name__}")
    if target.kind.name != "llvm":
        raise ValueError(f"{func}: target={target.kind.name!r} must be an llvm (CPU) "
                         "target")
    if not isinstance(before, (list, tuple)):
        raise TypeError(f"{func}: before must be a list of passes, "
                        f"got {type(before).__name__}")
    before = list(before)
    for i, p in enumerate(before):
        if not isinstance(p, tvm.transform.Pass):
            raise TypeError(f"{func}: before[{i}] must be a tvm.transform.Pass, "
                            f"got {type(p).__name__}")
    name = checks.string(func, "name", name)

    def run_stages(mod, _ctx):
        stages = (
            cpu.library_dispatch_passes(target)
            + cpu.legalize_passes(target)
            + cpu.dataflow_lower_passes(target)
            + cpu.finalize_passes(target)
        )
        with target:
            return tvm.transform.Sequential(before + stages, name="sequential")(mod)

    return tvm.transform.module_pass(run_stages, opt_level=0, name=name)
