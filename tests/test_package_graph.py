"""The package graph: `vit` (the paper) imports nothing of the application; `baselines` imports
`vit` to register its CNNs, and `replicate` imports both. Within `replicate`, the figures and the
benchmarks import none of the studies (which use both), and no module imports itself through
others: the static graph of every import, at module level or inside a function, has no cycle."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

import vit
from replicate import models

REPO = Path(__file__).resolve().parents[1]

BUILD_AND_LOAD_A_VIT = """
import sys, torch, vit
model = vit.create_model("vit_ti16", num_classes=3, image_size=32, depth=1)
torch.save(model.state_dict(), sys.argv[1])
loaded = vit.create_model("vit_ti16", num_classes=3, image_size=32, depth=1, pretrained=sys.argv[1])
assert torch.equal(loaded(torch.ones(1, 3, 32, 32)), model(torch.ones(1, 3, 32, 32)))
print(sorted(m for m in sys.modules if m.partition(".")[0] in ("replicate", "baselines")))
print(vit.list_models("cnn"))
"""


def test_vit_imports_neither_replicate_nor_baselines(tmp_path: Path) -> None:
    """In a fresh interpreter: building, saving and loading a ViT leaves the application out."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-c", BUILD_AND_LOAD_A_VIT, str(tmp_path / "vit.pt")]
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["[]", "[]"]  # no application module, no CNN registered


def test_the_application_registers_the_baselines_in_vits_registry() -> None:
    assert {"tinyvgg", "effnet_b0", "effnet_b2"} <= set(models.list_models("cnn"))
    assert models.get_model_entry("tinyvgg") is vit.get_model_entry("tinyvgg")  # one registry


@pytest.mark.parametrize("name", ["vit_b16", "vit_h14"])
def test_each_variant_is_one_function_named_after_it(name: str) -> None:
    from vit import variants

    config = getattr(variants, name)()
    assert variants.VARIANTS[name].config == config
    assert (config.image_size, config.num_classes) == (224, 1000)


PACKAGES = ("vit", "baselines", "replicate")
# The declared direction of the rooms: vit < baselines < replicate, and within replicate the
# shared pieces (errors, runtime, models, flops) < data < runs < training < figures, bench <
# study, the commands (replicate/*.py) using any. (importer, the prefixes it must not import):
ROOMS = ("replicate.data", "replicate.runs", "replicate.training", "replicate.figures",
         "replicate.bench", "replicate.study")  # fmt: skip
FORBIDDEN = {
    "vit": ("baselines", "replicate"),
    "baselines": ("replicate",),
    **{
        shared: ROOMS
        for shared in (
            "replicate.errors",
            "replicate.cli_errors",
            "replicate.runtime",
            "replicate.batch_norm",
            "replicate.models",
            "replicate.flops",
        )
    },  # fmt: skip
    "replicate.data": ROOMS[1:],
    "replicate.runs": ROOMS[2:],
    "replicate.training": ROOMS[3:],
    "replicate.figures": ("replicate.bench", "replicate.study"),
    "replicate.bench": ("replicate.figures", "replicate.study"),
}


def project_modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def import_graph() -> dict[str, set[str]]:
    """module -> the project modules it imports anywhere in its body (functions included);
    imports under `if TYPE_CHECKING:` are for annotations only and are left out."""
    modules = project_modules()

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        typing_only = {id(node) for block in ast.walk(tree) if _typing_block(block)
                       for node in ast.walk(block)}  # fmt: skip
        targets = set()
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.Import):
                targets |= {resolve(alias.name) for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets |= {resolve(f"{node.module}.{alias.name}") for alias in node.names}
        graph[name] = targets - {None, name}
    return graph


def _typing_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_no_module_imports_itself_through_others() -> None:
    assert cycles(import_graph()) == []


def test_cycles_are_found() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_imports_follow_the_declared_direction_of_the_rooms() -> None:
    against = [
        f"{module} imports {target}"
        for module, targets in import_graph().items()
        for importer, forbidden in FORBIDDEN.items()
        if module == importer or module.startswith(importer + ".")
        for target in sorted(targets)
        if target.startswith(forbidden)
    ]
    assert against == []
