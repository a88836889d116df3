"""The book's plotting helpers: one look for every figure.

Labelled axes (with units), a legend, optional log scales and SVG output in
notebooks. Sections call :func:`plot` for lines and :func:`bar` for ratios.

Data are checked before anything is drawn: a NaN or infinite value (a failed
measurement) and a value <= 0 on a log axis are refused with a message that
names the series and the position, instead of leaving a silent gap in the plot.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from . import checks

_SVG_SET = False
#: Largest figure side, in inches.
MAX_FIGSIZE = 50.0
_SCALES = ("linear", "log", "log10")


def use_svg() -> None:
    """Show matplotlib figures as SVG in Jupyter (sharp at any zoom); else a no-op."""
    global _SVG_SET
    if _SVG_SET:
        return
    try:
        from IPython import get_ipython
        from matplotlib_inline.backend_inline import set_matplotlib_formats
    except ImportError:
        return
    if get_ipython() is not None:
        set_matplotlib_formats("svg")
        _SVG_SET = True


def _check_labels(func: str, xlabel: Any, ylabel: Any, title: Any) -> None:
    for name, value in (("xlabel", xlabel), ("ylabel", ylabel)):
        if not isinstance(value, str):
            raise TypeError(f"{func}: {name} must be a str, got {type(value).__name__}")
        if not value.strip():
            raise ValueError(f"{func}: {name} must be a non-empty string "
                             "(say what and in which unit)")
    if title is not None and not isinstance(title, str):
        raise TypeError(f"{func}: title must be a str or None, got "
                        f"{type(title).__name__}")


def _values(func: str, name: str, values: Any, scale: str = "linear") -> np.ndarray:
    """``values`` as a 1-D float array of finite numbers (> 0 on a log scale)."""
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(
        values, (Sequence, np.ndarray)
    ):
        raise TypeError(f"{func}: {name} must be a list of numbers, got "
                        f"{type(values).__name__}")
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"{func}: {name} must hold numbers only") from None
    if arr.ndim != 1:
        raise ValueError(f"{func}: {name} must be 1-D, got shape {arr.shape}")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise ValueError(f"{func}: {name}[{bad[0]}]={arr[bad[0]]} is not a finite "
                         "number (a failed measurement?)")
    if scale != "linear" and arr.size and arr.min() <= 0:
        at = int(np.argmin(arr))
        raise ValueError(f"{func}: {name}[{at}]={arr[at]} must be > 0 on a log scale")
    return arr


def _axes(func: str, ax, figsize):
    import matplotlib.pyplot as plt
    from matplotlib.axes import Axes

    if isinstance(figsize, (str, bytes)) or not isinstance(figsize, (tuple, list)):
        raise TypeError(f"{func}: figsize must be a (width, height) pair in inches, "
                        f"got {type(figsize).__name__}")
    if len(figsize) != 2:
        raise ValueError(f"{func}: figsize={figsize!r} must be (width, height)")
    for i, side in enumerate(figsize):
        checks.real(func, f"figsize[{i}]", side, positive=True, maximum=MAX_FIGSIZE)
    if ax is not None and not isinstance(ax, Axes):
        raise TypeError(f"{func}: ax must be a matplotlib Axes or None, got "
                        f"{type(ax).__name__}")
    use_svg()
    if ax is None:
        _, ax = plt.subplots(figsize=tuple(figsize))
    return ax


def plot(
    x: Sequence[float],
    ys: Mapping[str, Sequence[float]],
    *,
    xlabel: str,
    ylabel: str,
    title: str | None = None,
    xscale: str = "linear",
    yscale: str = "linear",
    figsize: tuple[float, float] = (5.0, 3.2),
    ax=None,
):
    """Plot one line per entry of ``ys`` over ``x`` and return the matplotlib Axes.

    Parameters
    ----------
    x
        The shared x values (e.g. problem sizes): a non-empty list of finite numbers.
    ys
        Line labels mapped to y values, one finite number per x value.
    xscale, yscale
        ``"linear"``, ``"log"`` (base 2 on x: sizes usually double) or
        ``"log10"``; a log axis needs values > 0.
    figsize
        (width, height) in inches, each in ``(0, MAX_FIGSIZE]``.
    """
    func = "plot.plot"
    _check_labels(func, xlabel, ylabel, title)
    checks.one_of(func, "xscale", xscale, _SCALES)
    checks.one_of(func, "yscale", yscale, _SCALES)
    xs = _values(func, "x", x, xscale)
    if xs.size == 0:
        raise ValueError(f"{func}: x must not be empty")
    if not isinstance(ys, Mapping):
        raise TypeError(f"{func}: ys must be a dict of label -> values, got "
                        f"{type(ys).__name__}")
    if not ys:
        raise ValueError(f"{func}: ys must be a non-empty dict of label -> values")
    lines = {}
    for label, values in ys.items():
        if not isinstance(label, str):
            raise TypeError(f"{func}: ys keys must be str labels, got {label!r}")
        lines[label] = _values(func, f"ys[{label!r}]", values, yscale)
        if lines[label].size != xs.size:
            raise ValueError(f"{func}: ys[{label!r}] has {lines[label].size} values "
                             f"but x has {xs.size}")
    ax = _axes(func, ax, figsize)
    markers = "osD^v<>ph*"
    for i, (label, values) in enumerate(lines.items()):
        ax.plot(xs, values, marker=markers[i % len(markers)], markersize=4, label=label)
    _scale(ax, "x", xscale)
    _scale(ax, "y", yscale)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize="small")
    return ax


def _scale(ax, axis: str, scale: str) -> None:
    setter = ax.set_xscale if axis == "x" else ax.set_yscale
    if scale == "linear":
        setter("linear")
    elif scale == "log":
        setter("log", base=2 if axis == "x" else 10)
    else:
        setter("log", base=10)


def bar(
    labels: Sequence[str],
    values: Sequence[float],
    *,
    xlabel: str,
    ylabel: str,
    title: str | None = None,
    reference: float | None = None,
    figsize: tuple[float, float] = (5.0, 3.2),
    ax=None,
):
    """Draw a bar per label (e.g. speedups) and return the Axes.

    ``values`` are finite numbers, one per label; ``reference`` (finite)
    draws a dashed horizontal line, e.g. ``1.0`` for "as fast as the baseline".
    """
    func = "plot.bar"
    _check_labels(func, xlabel, ylabel, title)
    if isinstance(labels, (str, bytes, Mapping)) or not isinstance(
        labels, (Sequence, np.ndarray)
    ):
        raise TypeError(f"{func}: labels must be a list of str, got "
                        f"{type(labels).__name__}")
    for i, label in enumerate(labels):
        if not isinstance(label, str):
            raise TypeError(f"{func}: labels[{i}] must be a str, got {label!r}")
    heights = _values(func, "values", values)
    if len(labels) != heights.size:
        raise ValueError(f"{func}: {len(labels)} labels but {heights.size} values")
    if len(labels) == 0:
        raise ValueError(f"{func}: labels must not be empty")
    if reference is not None:
        reference = checks.real(func, "reference", reference)
    ax = _axes(func, ax, figsize)
    bars = ax.bar(range(heights.size), heights, color="C0")
    ax.bar_label(bars, fmt="%.2f", fontsize="small")
    ax.set_xticks(range(len(labels)), list(labels), rotation=20, ha="right")
    if reference is not None:
        ax.axhline(reference, color="C3", linestyle="--", linewidth=1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(True, axis="y", alpha=0.3)
    return ax
