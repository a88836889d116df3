"""Give an existing pass the opt level we want it to have in our pipelines.

Nearly every built-in Relax pass declares ``opt_level=0`` (a few declare 1), so
a :class:`tvm.transform.PassContext` ``opt_level`` alone cannot turn them off.
:func:`with_opt_level` wraps a pass in a module pass that declares another
level; a :class:`tvm.transform.Sequential` then gates the wrapper by it.
"""

from __future__ import annotations

import tvm

from .. import checks


def with_opt_level(inner: "tvm.transform.Pass", opt_level: int,
                   name: str | None = None) -> "tvm.transform.Pass":
    """Return a module pass that runs ``inner`` and declares ``opt_level``.

    Parameters
    ----------
    inner
        The pass to wrap, e.g. ``relax.transform.FoldConstant()``.
    opt_level
        The level the wrapper declares (0-4); a Sequential run under a
        PassContext with a lower ``opt_level`` skips it.
    name
        The wrapper's pass name, which is what ``disabled_pass`` and
        ``required_pass`` match; defaults to ``inner``'s name, so that disabling
        ``"FoldConstant"`` disables the wrapped FoldConstant too.
    """
    if not isinstance(inner, tvm.transform.Pass):
        raise TypeError("with_opt_level: inner must be a tvm.transform.Pass, "
                        f"got {type(inner).__name__}")
    opt_level = checks.integer("with_opt_level", "opt_level", opt_level,
                               minimum=0, maximum=4)
    if name is None:
        name = inner.info.name
    name = checks.string("with_opt_level", "name", name)

    def run_inner(mod, _ctx):
        return inner(mod)

    return tvm.transform.module_pass(run_inner, opt_level=opt_level, name=name)
