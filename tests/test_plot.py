import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from d2lcc import plot  # noqa: E402


def test_plot_draws_labelled_lines():
    ax = plot.plot([64, 128, 256], {"numpy": [1, 2, 3], "tvm": [2, 3, 4]}, xlabel="n", ylabel="GFLOPS", xscale="log")
    assert [line.get_label() for line in ax.get_lines()] == ["numpy", "tvm"]
    assert ax.get_xlabel() == "n" and ax.get_ylabel() == "GFLOPS"
    assert ax.get_xscale() == "log"
    assert ax.get_legend() is not None


def test_plot_validates_inputs():
    with pytest.raises(ValueError, match=r"ys\['a'\] has 2 values but x has 3"):
        plot.plot([1, 2, 3], {"a": [1, 2]}, xlabel="n", ylabel="s")
    with pytest.raises(ValueError, match="ylabel must be a non-empty string"):
        plot.plot([1], {"a": [1]}, xlabel="n", ylabel="")
    with pytest.raises(ValueError, match="yscale='cubic'"):
        plot.plot([1], {"a": [1]}, xlabel="n", ylabel="s", yscale="cubic")
    with pytest.raises(ValueError, match="non-empty dict"):
        plot.plot([1], {}, xlabel="n", ylabel="s")


def test_bar_draws_reference_line():
    ax = plot.bar(["default", "tiled"], [1.0, 3.5], xlabel="schedule", ylabel="speedup", reference=1.0)
    assert len(ax.patches) == 2
    assert ax.patches[1].get_height() == 3.5
    assert any(line.get_linestyle() == "--" for line in ax.get_lines())
    with pytest.raises(ValueError, match="2 labels but 1 values"):
        plot.bar(["a", "b"], [1.0], xlabel="x", ylabel="y")
