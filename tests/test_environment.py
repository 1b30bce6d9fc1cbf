"""environment.yml (conda) installs exactly the pins of requirements.txt."""

from __future__ import annotations

import re

from helpers import REPO_ROOT

PIN = re.compile(r"^([A-Za-z0-9_.\-\[\]]+)==([A-Za-z0-9_.\-+]+)$")


def pins(lines: list[str]) -> dict[str, str]:
    found = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = PIN.match(line)
        assert match, f"not pinned with ==: {line!r}"
        found[match.group(1).lower()] = match.group(2)
    return found


def test_requirements_are_all_pinned_and_name_the_core_stack():
    requirements = pins((REPO_ROOT / "requirements.txt").read_text().splitlines())
    assert requirements["tensorflow"].startswith("2.21.")
    for package in ("keras", "numpy", "matplotlib", "pillow", "nbval", "pytest", "jupyterlab"):
        assert package in requirements


def test_environment_yml_pip_section_equals_requirements():
    lines = (REPO_ROOT / "environment.yml").read_text().splitlines()
    assert any(re.fullmatch(r"\s*-\s*python=3\.11", line) for line in lines)
    start = next(i for i, line in enumerate(lines) if re.fullmatch(r"\s*-\s*pip:\s*", line))
    pip_lines = []
    for line in lines[start + 1 :]:
        item = re.fullmatch(r"\s{4,}-\s*(.+)", line)
        if not item:
            break
        pip_lines.append(item.group(1))
    requirements = pins((REPO_ROOT / "requirements.txt").read_text().splitlines())
    assert pins(pip_lines) == requirements
