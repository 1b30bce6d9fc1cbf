"""The rendered course pages, written by tools/run_notebooks.py: build/index.html and the
notebooks' pages, with solutions (the instructor's) and without (build/student-pages/), their
math typeset by a copy of MathJax beside them."""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import nbformat
import pytest
from solution_text import page_words, self_checks, solution_lines

from tools import course_pages, records, run_notebooks
from tools.notebook_format import SOLUTIONS_MARKER

NOTEBOOKS = sorted(run_notebooks.NOTEBOOKS.glob("[0-9]*.ipynb"))
# Rendered from their committed outputs (nothing executed): two of the smallest, 02 with math
RENDERED = ("02_softmax.ipynb", "08_scaling_out.ipynb")
REMOTE_MATHJAX = re.compile(r"(?:https?:)?//[^\s\"'<>]*mathjax", flags=re.IGNORECASE)


class LinkCollector(HTMLParser):
    """The href of every link of a page, in order, and the src of every script."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.scripts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs += [value for name, value in attrs if name == "href" and value]
        if tag == "script":
            self.scripts += [value for name, value in attrs if name == "src" and value]


def collected(page: Path) -> LinkCollector:
    collector = LinkCollector()
    collector.feed(page.read_text(encoding="utf-8"))
    return collector


def links(index: Path) -> list[str]:
    return collected(index).hrefs


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
    assert not (output_dir / run_notebooks.STUDENT_PAGES).exists(), "no solutions: one flavour"


@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        ("a <b> & `x < y`", "a &lt;b&gt; &amp; <code>x &lt; y</code>"),
        ("*where* and **what**", "<em>where</em> and <strong>what</strong>"),
    ],
)
def test_inline_markdown_is_escaped_before_it_is_formatted(markdown, expected):
    assert course_pages.inline_html(markdown) == expected


# --- the two flavours of the pages, and their MathJax ---------------------------------------------


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> Path:
    """The pages of RENDERED as `make run` writes them (build/ and build/student-pages/), made
    from the committed outputs: nothing is executed."""
    output_dir = tmp_path_factory.mktemp("build")
    args = argparse.Namespace(in_place=False, output_dir=output_dir, student_pages=True)
    mathjax_url = run_notebooks.prepare_pages(args)
    for name in RENDERED:
        path = run_notebooks.NOTEBOOKS / name
        run_notebooks.write(nbformat.read(path, as_version=4), path, args, mathjax_url)
    return output_dir


@pytest.mark.parametrize("name", RENDERED)
def test_student_pages_hold_the_self_checks_but_no_solution_text(pages, name):
    source = run_notebooks.NOTEBOOKS / name
    page = f"{source.stem}.html"
    instructor = page_words(pages / page)
    student = page_words(pages / run_notebooks.STUDENT_PAGES / page)
    lines = solution_lines(source)
    assert lines, f"{name}: no solution text to look for; is {SOLUTIONS_MARKER!r} still used?"
    assert all(line in instructor for line in lines), "the instructor's page has the solutions"
    left = [line for line in lines if line in student]
    assert not left, f"{name}: solution text on the student page: {left}"
    assert all(check in student for check in self_checks(source)), "every self-check stays"
    executed = nbformat.read(pages / run_notebooks.STUDENT_PAGES / name, as_version=4)
    assert any(cell.get("outputs") for cell in executed.cells), "the outputs stay"


@pytest.mark.parametrize("flavour", [".", run_notebooks.STUDENT_PAGES])
def test_pages_load_mathjax_from_their_own_folder_never_from_the_internet(pages, flavour):
    folder = pages / flavour
    for name in RENDERED:
        page = folder / name.replace(".ipynb", ".html")
        text = page.read_text(encoding="utf-8")
        assert not REMOTE_MATHJAX.findall(text), f"{page.name} loads MathJax from the internet"
        (src,) = [src for src in collected(page).scripts if "MathJax.js" in src]
        url = urlsplit(src)
        assert not url.scheme and not url.netloc, f"{src} is not a relative URL"
        assert (folder / url.path).is_file(), f"{src}: no such file beside {page.name}"
        root = (folder / url.path).parent
        configs = re.fullmatch(r"config=([\w,/.-]+)", url.query).group(1).split(",")
        for config in configs:  # each configuration the URL names is loaded from the copy
            assert (root / "config" / f"{config}.js").is_file(), config
        offline = (root / course_pages.MATHJAX_LOCAL_CONFIG).read_text(encoding="utf-8")
        assert 'webFont: "STIX-Web"' in offline, "the local configuration picks the fonts ..."
        fonts = root / "fonts" / "HTML-CSS" / "STIX-Web" / "woff"
        assert any(fonts.glob("*.woff")), "... which the copy holds"


def test_make_run_writes_student_pages_without_the_solutions(tmp_path, monkeypatch):
    sources, output_dir = tmp_path / "notebooks", tmp_path / "build"
    sources.mkdir()
    fake_notebook(sources / "01_good.ipynb", "01 · good", "answer = None")
    notebook = nbformat.read(sources / "01_good.ipynb", as_version=4)
    secret = "the answer is forty-two, computed as six times seven"
    notebook.cells.append(nbformat.v4.new_markdown_cell(f"{SOLUTIONS_MARKER}\n\n{secret}"))
    nbformat.write(notebook, sources / "01_good.ipynb")
    monkeypatch.setattr(run_notebooks, "NOTEBOOKS", sources)
    monkeypatch.setattr(sys, "argv", ["run_notebooks.py", "--output-dir", str(output_dir)])
    assert run_notebooks.main() == 0
    student = output_dir / run_notebooks.STUDENT_PAGES
    assert secret in (output_dir / "01_good.html").read_text(encoding="utf-8")
    assert secret not in (student / "01_good.html").read_text(encoding="utf-8")
    assert links(student / "index.html") == ["01_good.html"]
    assert (student / course_pages.MATHJAX_FOLDER / "MathJax.js").is_file()
