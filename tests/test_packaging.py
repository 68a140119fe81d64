"""What the package declares: its licence, every package the code and tests import, and the
modules `torch.hub` checks before it loads a model."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
try:
    METADATA = importlib.metadata.metadata("vit-replicate")  # pyproject.toml, as installed
except importlib.metadata.PackageNotFoundError:  # a checkout on PYTHONPATH, as on the GPU machine
    pytest.skip("vit-replicate is not installed: pip install -e '.[dev]'", allow_module_level=True)
PROJECT_PACKAGES = {"vit", "baselines", "replicate", "hubconf", "conftest"}


def declared_distributions() -> set[str]:
    """The requirements and the dev extra's (`pip install -e ".[dev]"`)."""
    requirements = importlib.metadata.requires("vit-replicate") or []
    wanted = [r for r in requirements if "extra" not in r or 'extra == "dev"' in r]
    return {_name(r) for r in wanted}


def requirements_of(distribution: str) -> set[str]:
    """`distribution` and everything it requires, transitively (installed ones only)."""
    found, todo = set(), [distribution]
    while todo:
        name = _canonical(todo.pop())
        if name in found:
            continue
        found.add(name)
        try:
            requirements = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        todo += [_name(r) for r in requirements if "extra ==" not in r]
    return found


def _name(requirement: str) -> str:
    return _canonical(re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0])


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def imported_modules(folder: Path) -> set[str]:
    """The top-level modules imported anywhere under `folder`, at module level or inside a
    function (optional imports guarded by try/except and pytest.importorskip excluded)."""
    modules = set()
    for path in folder.rglob("*.py"):
        tree = ast.parse(path.read_text())
        guarded = {
            id(node)
            for handler in ast.walk(tree)
            if isinstance(handler, ast.Try)
            for statement in handler.body
            for node in ast.walk(statement)
        }
        for node in ast.walk(tree):
            if id(node) in guarded:
                continue
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    return modules


def third_party(modules: set[str]) -> set[str]:
    local = {p.stem for p in (REPO / "tests").glob("*.py")}
    return {m for m in modules if m not in sys.stdlib_module_names | PROJECT_PACKAGES | local} - {
        "__future__"
    }


def test_the_licence_is_declared_and_shipped() -> None:
    assert METADATA["License-Expression"] == "MIT"  # PEP 639's SPDX form
    assert METADATA.get_all("License-File") == ["LICENSE"]
    assert (REPO / "LICENSE").read_text().startswith("MIT License\n")


def test_every_package_the_code_and_tests_import_is_declared() -> None:
    """A package that arrives only through another's requirements (scipy through
    scikit-learn) can vanish when that one drops it."""
    distributions = importlib.metadata.packages_distributions()
    optional = {"jax", "flax", "optax", "torchao", "onnx", "onnxruntime", "torchinfo"}
    declared = declared_distributions()
    for folder in ("vit", "baselines", "replicate", "tests"):
        for module in sorted(third_party(imported_modules(REPO / folder)) - optional):
            names = {_canonical(d) for d in distributions.get(module, [module])}
            assert names & declared, f"{folder}/ imports {module}, which pyproject.toml lacks"


def test_hubconf_names_every_module_a_hub_load_imports() -> None:
    """torch.hub checks `dependencies` before loading: building a model must need no package
    beyond them and what torch itself requires."""
    code = (
        "import sys; before = set(sys.modules); import hubconf; hubconf.vit_ti16(); "
        "print(' '.join(sorted({n.split('.')[0] for n in sys.modules if n not in before})))"
    )
    imported = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    import hubconf

    distributions = importlib.metadata.packages_distributions()

    def packages(modules) -> set[str]:
        return {_canonical(d) for m in modules for d in distributions.get(m, [])}

    needed = packages(imported) - requirements_of("torch") - {"vit-replicate"}
    assert needed <= packages(hubconf.dependencies), needed - packages(hubconf.dependencies)
