"""The layout's rules, checked so they cannot drift: one folder per stage, plugins on the public
surface only, every hook documented, printing and progress bars only in ``zoo/cli``."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

from conftest import REPO_ROOT

PLUGIN_FILES = sorted((REPO_ROOT / "plugins").rglob("*.py")) + sorted((REPO_ROOT / "examples").rglob("*.py"))
CORE_FILES = sorted((REPO_ROOT / "zoo").rglob("*.py")) + [REPO_ROOT / "registry.py"]
MAX_MODULE_LINES = 400
MAX_TOP_LEVEL_MODULES = 8


def _imports(path: Path) -> list[str]:
    """Every module named by an import statement in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


@pytest.mark.parametrize("path", PLUGIN_FILES, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_plugins_import_only_what_zoo_publishes(path):
    private = [name for name in _imports(path) if name.startswith("zoo.")]
    assert not private, f"{path.name} imports private core modules {private}: publish the name in zoo/__init__.py"


def test_every_published_name_resolves():
    import zoo

    for name in zoo.__all__:
        assert getattr(zoo, name) is not None, name


def test_every_hook_is_documented_in_the_plugin_guide():
    from zoo import hookspecs

    readme = (REPO_ROOT / "README.md").read_text()
    guide = readme[readme.index("## Writing a plugin"):]
    for name, function in inspect.getmembers(hookspecs, inspect.isfunction):
        if name.startswith("register_"):
            assert f"`{name}(register)`" in guide, f"hook {name} is missing from the README's plugin guide"
            assert (function.__doc__ or "").strip(), f"hook {name} has no docstring"


def test_no_module_is_over_the_size_limit():
    too_long = {str(p.relative_to(REPO_ROOT)): n for p in CORE_FILES + PLUGIN_FILES + [REPO_ROOT / "main.py"]
                if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert not too_long, f"split these by job: {too_long}"


def test_the_top_of_zoo_holds_few_modules():
    top = sorted(p.name for p in (REPO_ROOT / "zoo").glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL_MODULES, f"move stage code into its folder: {top}"


@pytest.mark.parametrize("path", [p for p in CORE_FILES + PLUGIN_FILES if "cli" not in p.relative_to(REPO_ROOT).parts],
                         ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_only_the_command_line_prints_or_draws_progress_bars(path):
    text = path.read_text()
    assert "rich.progress" not in _imports(path), f"{path.name} builds progress bars: report through zoo.callbacks"
    calls = [node for node in ast.walk(ast.parse(text)) if isinstance(node, ast.Call)]
    printing = [node.lineno for node in calls if isinstance(node.func, ast.Name) and node.func.id == "print"]
    printing += [node.lineno for node in calls if isinstance(node.func, ast.Attribute)
                 and node.func.attr == "print" and "console" in ast.unparse(node.func.value)]
    assert not printing, f"{path.name} prints at lines {printing}: only zoo/cli may"


def test_no_command_gathers_its_options_with_locals():
    for path in [REPO_ROOT / "main.py", *sorted((REPO_ROOT / "zoo" / "cli").glob("*.py"))]:
        assert not re.search(r"\blocals\(\)", path.read_text()), f"{path.name} collects options with locals()"
