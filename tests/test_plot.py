import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from d2lcc import plot  # noqa: E402


def test_plot_draws_labelled_lines():
    ax = plot.plot([64, 128, 256], {"numpy": [1, 2, 3], "tvm": [2, 3, 4]}, xlabel="n",
                   ylabel="GFLOPS", xscale="log")
    assert [line.get_label() for line in ax.get_lines()] == ["numpy", "tvm"]
    assert ax.get_xlabel() == "n" and ax.get_ylabel() == "GFLOPS"
    assert ax.get_xscale() == "log"
    assert ax.get_legend() is not None
    np.testing.assert_array_equal(ax.get_lines()[1].get_ydata(), [2, 3, 4])


def test_plot_accepts_numpy_arrays_and_an_axes():
    import matplotlib.pyplot as plt

    _, ax = plt.subplots()
    out = plot.plot(np.arange(3), {"a": np.ones(3)}, xlabel="i", ylabel="s", ax=ax)
    assert out is ax


def test_plot_validates_inputs():
    with pytest.raises(ValueError, match=r"ys\['a'\] has 2 values but x has 3"):
        plot.plot([1, 2, 3], {"a": [1, 2]}, xlabel="n", ylabel="s")
    with pytest.raises(ValueError, match="ylabel must be a non-empty string"):
        plot.plot([1], {"a": [1]}, xlabel="n", ylabel="")
    with pytest.raises(TypeError, match="plot.plot: xlabel must be a str"):
        plot.plot([1], {"a": [1]}, xlabel=None, ylabel="s")
    with pytest.raises(ValueError, match="yscale='cubic'"):
        plot.plot([1], {"a": [1]}, xlabel="n", ylabel="s", yscale="cubic")
    with pytest.raises(ValueError, match="non-empty dict"):
        plot.plot([1], {}, xlabel="n", ylabel="s")
    with pytest.raises(TypeError, match="plot.plot: ys must be a dict"):
        plot.plot([1], [1], xlabel="n", ylabel="s")
    with pytest.raises(ValueError, match="plot.plot: x must not be empty"):
        plot.plot([], {"a": []}, xlabel="n", ylabel="s")
    with pytest.raises(TypeError, match="plot.plot: x must hold numbers only"):
        plot.plot(["a"], {"a": [1]}, xlabel="n", ylabel="s")
    with pytest.raises(TypeError, match="plot.plot: ax must be a matplotlib Axes"):
        plot.plot([1], {"a": [1]}, xlabel="n", ylabel="s", ax=object())


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_plot_refuses_non_finite_values(bad):
    with pytest.raises(ValueError, match=r"ys\['tvm'\]\[1\]=(nan|inf) is not a finite"):
        plot.plot([1, 2], {"tvm": [1.0, bad]}, xlabel="n", ylabel="s")
    with pytest.raises(ValueError, match=r"plot: x\[0\]=(nan|inf) is not a finite"):
        plot.plot([bad, 2], {"tvm": [1.0, 2.0]}, xlabel="n", ylabel="s")
    with pytest.raises(ValueError, match=r"plot.bar: values\[0\]"):
        plot.bar(["a"], [bad], xlabel="x", ylabel="y")
    with pytest.raises(ValueError, match="plot.bar: reference=(nan|inf)"):
        plot.bar(["a"], [1.0], xlabel="x", ylabel="y", reference=bad)


def test_log_scale_refuses_values_that_it_cannot_show():
    with pytest.raises(ValueError, match=r"x\[0\]=0.0 must be > 0 on a log scale"):
        plot.plot([0, 1], {"a": [1, 2]}, xlabel="n", ylabel="s", xscale="log")
    with pytest.raises(ValueError, match=r"ys\['a'\]\[1\]=-2.0 must be > 0"):
        plot.plot([1, 2], {"a": [1, -2]}, xlabel="n", ylabel="s", yscale="log10")
    ax = plot.plot([1, 2], {"a": [0, -2]}, xlabel="n", ylabel="s")  # fine on linear
    assert ax.get_yscale() == "linear"


@pytest.mark.parametrize(
    "figsize, exc, msg",
    [((0, 3), ValueError, r"figsize\[0\]=0.0 must be > 0"),
     ((5, 1e6), ValueError, r"figsize\[1\]=1000000.0 must be <="),
     ((5,), ValueError, "must be \\(width, height\\)"),
     ("big", TypeError, "figsize must be a \\(width, height\\) pair")],
)
def test_figsize_is_checked(figsize, exc, msg):
    with pytest.raises(exc, match=msg):
        plot.plot([1], {"a": [1]}, xlabel="n", ylabel="s", figsize=figsize)


def test_bar_draws_reference_line():
    ax = plot.bar(["default", "tiled"], [1.0, 3.5], xlabel="schedule", ylabel="speedup",
                  reference=1.0)
    assert len(ax.patches) == 2
    assert ax.patches[1].get_height() == 3.5
    assert any(line.get_linestyle() == "--" for line in ax.get_lines())
    with pytest.raises(ValueError, match="2 labels but 1 values"):
        plot.bar(["a", "b"], [1.0], xlabel="x", ylabel="y")
    with pytest.raises(ValueError, match="plot.bar: labels must not be empty"):
        plot.bar([], [], xlabel="x", ylabel="y")
    with pytest.raises(TypeError, match=r"plot.bar: labels\[1\] must be a str"):
        plot.bar(["a", 2], [1.0, 2.0], xlabel="x", ylabel="y")
    with pytest.raises(TypeError, match="plot.bar: labels must be a list"):
        plot.bar(None, [1.0], xlabel="x", ylabel="y")
