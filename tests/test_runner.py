"""The notebook runner reports a broken cell by file, line, source and error."""

import nbformat
import pytest

import notebooks

GOOD_AND_BROKEN = """# A section
:label:`sec_test`

Some prose.

```{.python .input}
x = 40 + 2
print(x)
```

More prose.

```{.python .input}
y = x / 0
```
"""


def test_broken_cell_is_named(tmp_path):
    (tmp_path / "chapter_x").mkdir()
    (tmp_path / "chapter_x" / "broken.md").write_text(GOOD_AND_BROKEN)
    out = tmp_path / "out" / "broken.ipynb"
    with pytest.raises(notebooks.SectionError) as err:
        notebooks.execute("chapter_x/broken.md", root=tmp_path, out=out, cell_timeout=60)
    message = str(err.value)
    assert message.startswith("chapter_x/broken.md:14: a cell failed")
    assert "y = x / 0" in message
    assert "ZeroDivisionError" in message
    assert not out.exists()  # no stale notebook behind a failure


def test_good_section_is_written_with_outputs(tmp_path):
    (tmp_path / "good.md").write_text(GOOD_AND_BROKEN.split("More prose.")[0])
    out = tmp_path / "good.ipynb"
    result = notebooks.execute("good.md", root=tmp_path, out=out, cell_timeout=60)
    assert result.seconds > 0
    nb = nbformat.read(out, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[0].outputs[0]["text"].strip() == "42"


def test_every_section_is_found_and_in_a_toc():
    found = notebooks.sections()
    assert "index.md" in found and "chapter_getting_started/install.md" in found
    assert not any(s.startswith("_build") for s in found)


def test_section_dependencies_follow_imports():
    # install.md uses d2lcc.env() and d2lcc.target; target.py imports machine.py.
    deps = {p.name for p in notebooks.section_dependencies("chapter_getting_started/install.md")}
    assert {"__init__.py", "target.py", "machine.py"} <= deps
    assert not any(p.parent.name == "qnn" for p in notebooks.section_dependencies("chapter_getting_started/install.md"))
    assert notebooks.section_dependencies("chapter_hardware/index.md") == []


def test_names_used_reads_attribute_and_from_imports():
    text = "import d2lcc\nd2lcc.bench.compare(x)\nfrom d2lcc import plot, target\n"
    assert notebooks._names_used(text) == {"bench", "plot", "target"}


WITH_EXERCISES = """# A section

```{.python .input}
x = 40 + 2
```

## Summary

* Nothing.

## Exercises

1. Print the answer.

   ```python
   print(x)
   ```

2. Divide it.

```python
y = x / EXERCISE_DIVISOR
```
"""


def test_exercise_blocks_are_found_with_their_lines():
    blocks = notebooks.exercise_blocks(WITH_EXERCISES)
    assert blocks == [(16, "print(x)"), (22, "y = x / EXERCISE_DIVISOR")]
    assert notebooks.exercise_blocks("# No exercises\n```python\nx\n```\n") == []


def test_exercise_code_runs_after_the_section_and_is_not_saved(tmp_path):
    ok = WITH_EXERCISES.replace("EXERCISE_DIVISOR", "2")
    (tmp_path / "ok.md").write_text(ok)
    out = tmp_path / "ok.ipynb"
    notebooks.execute("ok.md", root=tmp_path, out=out, cell_timeout=60)
    nb = nbformat.read(out, as_version=4)
    assert [c.source for c in nb.cells if c.cell_type == "code"] == ["x = 40 + 2"]


def test_broken_exercise_is_named(tmp_path):
    (tmp_path / "bad.md").write_text(WITH_EXERCISES.replace("EXERCISE_DIVISOR", "0"))
    with pytest.raises(notebooks.SectionError) as err:
        notebooks.execute("bad.md", root=tmp_path, out=tmp_path / "bad.ipynb", cell_timeout=60)
    message = str(err.value)
    assert message.startswith("bad.md:22: an exercise's code failed")
    assert "ZeroDivisionError" in message
