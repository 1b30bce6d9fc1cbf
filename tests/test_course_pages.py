"""The rendered course pages: build/index.html, written by tools/run_notebooks.py."""

from __future__ import annotations

import shutil
import sys
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

from tools import course_pages, records, run_notebooks

NOTEBOOKS = sorted(run_notebooks.NOTEBOOKS.glob("[0-9]*.ipynb"))


class LinkCollector(HTMLParser):
    """The href of every link of a page, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs += [value for name, value in attrs if name == "href" and value]


def links(index: Path) -> list[str]:
    collector = LinkCollector()
    collector.feed(index.read_text(encoding="utf-8"))
    return collector.hrefs


def fake_notebook(path: Path, title: str, *code: str) -> None:
    """A notebook that opens like the course's: title, badge, prose, run time."""
    opening = (
        f"# {title}\n\n<a href='https://example.org'>badge</a>\n\n"
        "Some context. Here you learn the **one** thing `fake` teaches.\n\n"
        "**You will learn**\n- a thing\n\n**Run time:** about 1 s on a 2-core CPU."
    )
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_markdown_cell(opening)]
    notebook.cells += [nbformat.v4.new_code_cell(source) for source in code]
    nbformat.write(notebook, path)


def test_real_notebooks_have_a_title_goal_and_run_time_for_the_index():
    assert NOTEBOOKS
    for path in NOTEBOOKS:
        summary = course_pages.summarize(nbformat.read(path, as_version=4), path.stem)
        assert summary.title.startswith(path.stem[:2]), f"{path.name}: title {summary.title!r}"
        assert len(summary.goal) > 40, f"{path.name}: goal {summary.goal!r}"
        record = nbformat.read(path, as_version=4).metadata[records.RECORD_KEY]
        assert summary.run_time and records.machine_text(record) in summary.run_time, path.name


def test_index_of_the_real_notebooks_links_every_page_and_every_link_resolves(tmp_path):
    """Rendered pages stand in as stubs: nothing is executed."""
    for path in NOTEBOOKS:
        shutil.copy(path, tmp_path / path.name)
        (tmp_path / f"{path.stem}.html").write_text("<html></html>", encoding="utf-8")
    index = course_pages.write_index(tmp_path, NOTEBOOKS)
    hrefs = links(index)
    assert hrefs == [f"{path.stem}.html" for path in NOTEBOOKS], "every notebook, in order"
    assert all((tmp_path / href).is_file() for href in hrefs)
    page = index.read_text(encoding="utf-8")
    assert '<span class="failed">' not in page and '<span class="missing">' not in page
    assert "Run time:" in page


def test_index_marks_failed_and_missing_pages_and_renders_inline_markdown(tmp_path):
    sources, output_dir = tmp_path / "notebooks", tmp_path / "build"
    sources.mkdir()
    output_dir.mkdir()
    for stem in ("01_first", "02_broken", "03_later"):
        fake_notebook(sources / f"{stem}.ipynb", f"{stem[:2]} · {stem[3:]}")
    broken = nbformat.read(sources / "02_broken.ipynb", as_version=4)
    broken.cells.append(nbformat.v4.new_code_cell("1 / 0"))
    broken.cells[-1].outputs = [nbformat.v4.new_output("error", ename="ZeroDivisionError")]
    nbformat.write(broken, output_dir / "02_broken.ipynb")
    shutil.copy(sources / "01_first.ipynb", output_dir)
    for stem in ("01_first", "02_broken"):
        (output_dir / f"{stem}.html").write_text("<html></html>", encoding="utf-8")

    index = course_pages.write_index(output_dir, sorted(sources.glob("*.ipynb"), reverse=True))
    assert links(index) == ["01_first.html", "02_broken.html"], "no link to a page not rendered"
    page = index.read_text(encoding="utf-8")
    assert page.index("01 · first") < page.index("02 · broken") < page.index("03 · later")
    assert page.count("failed: the page stops at the failing cell") == 1
    assert page.count("not rendered yet") == 1
    assert "Here you learn the <strong>one</strong> thing <code>fake</code> teaches." in page
    assert "about 1 s on a 2-core CPU." in page


def test_make_run_writes_the_index_also_when_a_notebook_fails(tmp_path, monkeypatch, capsys):
    sources, output_dir = tmp_path / "notebooks", tmp_path / "build"
    sources.mkdir()
    fake_notebook(sources / "01_good.ipynb", "01 · good", "print('hello')")
    fake_notebook(sources / "02_bad.ipynb", "02 · bad", "raise ValueError('broken')")
    monkeypatch.setattr(run_notebooks, "NOTEBOOKS", sources)
    monkeypatch.setattr(sys, "argv", ["run_notebooks.py", "--output-dir", str(output_dir)])
    assert run_notebooks.main() == 1
    index = output_dir / "index.html"
    assert "course pages" in capsys.readouterr().out
    hrefs = links(index)
    assert hrefs == ["01_good.html", "02_bad.html"]
    assert all((output_dir / href).is_file() for href in hrefs)
    assert index.read_text(encoding="utf-8").count("failed:") == 1


@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        ("a <b> & `x < y`", "a &lt;b&gt; &amp; <code>x &lt; y</code>"),
        ("*where* and **what**", "<em>where</em> and <strong>what</strong>"),
    ],
)
def test_inline_markdown_is_escaped_before_it_is_formatted(markdown, expected):
    assert course_pages.inline_html(markdown) == expected
