"""The course pages (written by ``make run``): each notebook rendered as HTML, its math typeset
by a copy of MathJax beside the pages (no internet needed), and ``index.html`` listing them with
the title, goal and run time read from each notebook's opening markdown cell."""

from __future__ import annotations

import html
import importlib.util
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter

HEADING = re.compile(r"^#+\s+(.+)$", re.MULTILINE)
RUN_TIME = "**Run time:**"
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z*`])")
# The sentence of a notebook's opening that says what the reader does there.
GOAL_OPENINGS = ("This notebook", "Here you", "You ")


# MathJax 2.7 as the package pinned in requirements-pages.txt ships it (the files the classic
# Jupyter Notebook served): TeX input, HTML-CSS output with the STIX-Web fonts, not the TeX fonts
# nor the CommonHTML output that nbconvert's CDN URL asks for. Pages load it from MATHJAX_FOLDER
# beside them, with the local configuration below (MathJax's place for one: config/local/).
MATHJAX_PACKAGE = "jupyter_server_mathjax"
MATHJAX_FOLDER = "mathjax"
MATHJAX_LOCAL_CONFIG = "config/local/offline.js"
MATHJAX_URL = f"{MATHJAX_FOLDER}/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe,local/offline"
OFFLINE_CONFIG = """\
MathJax.Hub.Config({"HTML-CSS": {availableFonts: [], webFont: "STIX-Web", imageFont: null}});
MathJax.Ajax.loadComplete("[MathJax]/config/local/offline.js");
"""


def mathjax_source() -> Path | None:
    """MathJax's files as installed from requirements-pages.txt (None when not installed)."""
    spec = importlib.util.find_spec(MATHJAX_PACKAGE)  # found, not imported
    if spec is None or not spec.submodule_search_locations:
        return None
    static = Path(spec.submodule_search_locations[0]) / "static"
    return static if (static / "MathJax.js").is_file() else None


def install_mathjax(output_dir: Path) -> str:
    """Copy MathJax into ``output_dir`` and return the URL its pages load it from; without
    the package, say so and return nbconvert's default (a CDN: math needs the internet)."""
    source = mathjax_source()
    if source is None:
        print(
            f"    note: {MATHJAX_PACKAGE} is not installed (make setup installs it from "
            "requirements-pages.txt): the pages load MathJax from the internet"
        )
        return HTMLExporter().mathjax_url
    target = output_dir / MATHJAX_FOLDER
    shutil.copytree(source, target, dirs_exist_ok=True)
    config = target / MATHJAX_LOCAL_CONFIG
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(OFFLINE_CONFIG, encoding="utf-8")
    return MATHJAX_URL


def render(notebook: nbformat.NotebookNode, page: Path, mathjax_url: str) -> Path:
    """Write ``notebook`` as the HTML page ``page``, loading MathJax from ``mathjax_url``."""
    body, _ = HTMLExporter(mathjax_url=mathjax_url).from_notebook_node(notebook)
    page.write_text(body, encoding="utf-8")
    return page


@dataclass(frozen=True)
class NotebookSummary:
    """What the course index says about one notebook, read from its opening markdown cell."""

    title: str
    goal: str
    run_time: str | None


def paragraphs(markdown: str) -> list[str]:
    """The paragraphs of ``markdown``, each on one line."""
    return [" ".join(part.split()) for part in re.split(r"\n\s*\n", markdown) if part.strip()]


def summarize(notebook: nbformat.NotebookNode, fallback_title: str) -> NotebookSummary:
    """Title (first heading), one-sentence goal and stated run time of ``notebook``.

    The goal is the opening's first sentence that begins like "This notebook", "Here you" or
    "You ...", else the last sentence of its first paragraph of prose.
    """
    markdown = [cell.source for cell in notebook.cells if cell.cell_type == "markdown"]
    heading = next((match for text in markdown if (match := HEADING.search(text))), None)
    title = heading.group(1).strip() if heading else fallback_title
    opening = paragraphs(markdown[0]) if markdown else []
    run_time = next(
        (p.removeprefix(RUN_TIME).strip() for p in opening if p.startswith(RUN_TIME)), None
    )
    prose = [p for p in opening if not p.startswith(("#", "<", "*", "-", "$"))]
    sentences = [s for p in prose for s in SENTENCE_END.split(p)]
    fallback_goal = SENTENCE_END.split(prose[0])[-1] if prose else ""
    goal = next((s for s in sentences if s.startswith(GOAL_OPENINGS)), fallback_goal)
    return NotebookSummary(title, goal, run_time)


def inline_html(markdown: str) -> str:
    """One line of markdown as HTML: escaped, with `code`, **bold** and *italics*."""
    text = html.escape(markdown, quote=False)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    text = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", text)
    return re.sub(r"\*([^*]+)\*", r"<em>\1</em>", text)


def has_failed(notebook: nbformat.NotebookNode) -> bool:
    """Whether an executed notebook stopped at an error."""
    return any(
        output.get("output_type") == "error"
        for cell in notebook.cells
        for output in cell.get("outputs", [])
    )


def index_entry(source: Path, output_dir: Path) -> str:
    """The index's list item for one notebook (its executed copy in ``output_dir`` if any)."""
    executed, rendered = output_dir / source.name, output_dir / f"{source.stem}.html"
    try:
        notebook = nbformat.read(executed if executed.is_file() else source, as_version=4)
    except (OSError, ValueError):  # unreadable (being rewritten?): listed by its file name
        notebook = nbformat.v4.new_notebook()
    summary = summarize(notebook, source.stem)
    title = inline_html(summary.title)
    if rendered.is_file():
        title = f'<a href="{html.escape(rendered.name)}">{title}</a>'
        if executed.is_file() and has_failed(notebook):
            title += ' <span class="failed">failed: the page stops at the failing cell</span>'
    else:
        title += ' <span class="missing">not rendered yet (make run)</span>'
    lines = [f"<li><h2>{title}</h2>", f'<p class="goal">{inline_html(summary.goal)}</p>']
    if summary.run_time:
        lines.append(
            f'<p class="time"><strong>Run time:</strong> {inline_html(summary.run_time)}</p>'
        )
    return "\n".join([*lines, "</li>"])


INDEX_TEMPLATE = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Semantic segmentation with TensorFlow: the course</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 50rem; margin: 2rem auto; padding: 0 1rem;
       line-height: 1.5; color: #222; }}
h2 {{ font-size: 1.15rem; margin-bottom: 0.25rem; }}
ol {{ padding-left: 0; list-style: none; }}
li {{ margin-bottom: 1.5rem; }}
p {{ margin: 0.25rem 0; }}
.time {{ color: #555; font-size: 0.9rem; }}
.failed {{ color: #b00020; font-size: 0.85rem; font-weight: normal; }}
.missing {{ color: #777; font-size: 0.85rem; font-weight: normal; }}
code {{ background: #f3f3f3; padding: 0 0.2rem; }}
</style>
</head>
<body>
<h1>Semantic segmentation with TensorFlow: the course</h1>
<p>The notebooks in order, executed top to bottom by <code>make run</code>.
Each page shows one notebook with its outputs.</p>
<ol>
{entries}
</ol>
</body>
</html>
"""


def write_index(output_dir: Path, notebooks: list[Path]) -> Path:
    """Write ``output_dir/index.html`` listing ``notebooks`` in order of their file names."""
    ordered = sorted({path.name: path for path in notebooks}.values(), key=lambda p: p.name)
    entries = "\n".join(index_entry(path, output_dir) for path in ordered)
    index = output_dir / "index.html"
    index.write_text(INDEX_TEMPLATE.format(entries=entries), encoding="utf-8")
    return index
