"""The book's plotting helpers: one look for every figure.

Labelled axes (with units), a legend, optional log scales and SVG output in
notebooks. Sections call :func:`plot` for lines and :func:`bar` for ratios.
"""

from __future__ import annotations

from typing import Mapping, Sequence

_SVG_SET = False


def use_svg() -> None:
    """Show matplotlib figures as SVG in Jupyter (sharp at any zoom); a no-op elsewhere."""
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


def _check_labels(func: str, xlabel: str, ylabel: str) -> None:
    for name, value in (("xlabel", xlabel), ("ylabel", ylabel)):
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{func}: {name} must be a non-empty string (say what and in which unit)")


def _axes(ax, figsize):
    import matplotlib.pyplot as plt

    use_svg()
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
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
        The shared x values (e.g. problem sizes).
    ys
        Line labels mapped to y values, one per x value.
    xscale, yscale
        ``"linear"``, ``"log"`` (base 2 on x: sizes usually double) or ``"log10"``.
    """
    _check_labels("plot", xlabel, ylabel)
    if not isinstance(ys, Mapping) or not ys:
        raise ValueError("plot: ys must be a non-empty dict of label -> values")
    for label, values in ys.items():
        if len(values) != len(x):
            raise ValueError(f"plot: ys[{label!r}] has {len(values)} values but x has {len(x)}")
    ax = _axes(ax, figsize)
    markers = "osD^v<>ph*"
    for i, (label, values) in enumerate(ys.items()):
        ax.plot(x, values, marker=markers[i % len(markers)], markersize=4, label=label)
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
    elif scale == "log10":
        setter("log", base=10)
    else:
        raise ValueError(f"plot: {axis}scale={scale!r} must be 'linear', 'log' or 'log10'")


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

    ``reference`` draws a dashed horizontal line, e.g. ``1.0`` for "as fast as the baseline".
    """
    _check_labels("bar", xlabel, ylabel)
    if len(labels) != len(values):
        raise ValueError(f"bar: {len(labels)} labels but {len(values)} values")
    if len(labels) == 0:
        raise ValueError("bar: labels must not be empty")
    ax = _axes(ax, figsize)
    bars = ax.bar(range(len(values)), values, color="C0")
    ax.bar_label(bars, fmt="%.2f", fontsize="small")
    ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right")
    if reference is not None:
        ax.axhline(reference, color="C3", linestyle="--", linewidth=1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(True, axis="y", alpha=0.3)
    return ax
