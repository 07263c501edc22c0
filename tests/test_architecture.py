"""The package's own imports, as ARCHITECTURE.md states them: no import cycles between its modules, no
function-local imports of its own modules (which would hide a cycle), one path per module (no aliases) and no
private name imported across rooms."""

import ast
from pathlib import Path


PACKAGE = Path(__file__).resolve().parents[1] / "birdie_hf"  # read, not imported: a cycle would fail the import


def _module_name(path: Path) -> str:
    parts = ("birdie_hf",) + path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in PACKAGE.rglob("*.py")}


def _is_package(name: str) -> bool:
    return MODULES.get(name, Path()).name == "__init__.py"


def _imported(node: ast.AST, module: str) -> list[str]:
    """The package's modules an import statement loads (a package's `__init__` and any submodule named)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name in MODULES]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        base = module.split(".") if _is_package(module) else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if target not in MODULES:
        return []
    found = [target]
    found += [f"{target}.{alias.name}" for alias in node.names if f"{target}.{alias.name}" in MODULES]
    # Importing `a.b.c` first runs the `__init__` of `a.b` (unless the importer lives inside `a.b` already).
    parts = target.split(".")
    found += [
        ".".join(parts[:i]) for i in range(2, len(parts)) if not (module + ".").startswith(".".join(parts[:i]) + ".")
    ]
    return found


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _module_level_imports(module: str) -> set[str]:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    found: set[str] = set()
    pending = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            continue
        if isinstance(node, (ast.If, ast.Try)):
            pending.extend(node.body + node.orelse + getattr(node, "handlers", []) + getattr(node, "finalbody", []))
        elif isinstance(node, ast.ExceptHandler):
            pending.extend(node.body)
        else:
            found.update(_imported(node, module))
    return found - {module}


def test_the_package_has_no_import_cycles():
    graph = {module: _module_level_imports(module) for module in MODULES if module != "birdie_hf"}
    assert "birdie_hf" not in set().union(*graph.values()), "a module imports the package root"
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph.get(module, ())):
            assert state.get(target) != 1, "import cycle: " + " -> ".join(path[path.index(target) :] + [target])
            if target not in state:
                visit(target, path + [target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def test_no_function_imports_the_package_itself():
    local = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for function in ast.walk(tree):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(function):
                if isinstance(node, (ast.Import, ast.ImportFrom)) and _imported(node, module):
                    local.append(f"{module}.{function.name} (line {node.lineno})")
    assert not local, f"function-local imports of the package's own modules: {local}"


def test_every_module_has_one_import_path():
    """No module replaces itself in `sys.modules` to answer to a second name: each has the path of its room."""
    texts = {module: path.read_text(encoding="utf-8") for module, path in MODULES.items()}
    aliased = [module for module, text in texts.items() if "sys.modules[" in text and "] = " in text]
    assert not aliased, f"alias modules: {aliased}"


def test_runs_imports_nothing_of_training():
    """`runs/` (a run's folder, checkpoints and spec) is bookkeeping a trainer uses, not part of it: at run time it
    imports only itself, so a fine-tuning recipe or a tool can read run folders without loading training."""
    outside = {
        module: sorted(target for target in _module_level_imports(module) if not target.startswith("birdie_hf.runs"))
        for module in MODULES
        if module.startswith("birdie_hf.runs")
    }
    assert all(not targets for targets in outside.values()), outside


def test_recipes_and_benchmarks_use_the_public_library_only():
    """Recipes and benchmarks import names the library makes public (no `_private` name), and never a recipe or a
    benchmark by file path."""
    root = PACKAGE.parent
    problems = []
    for path in sorted([*root.glob("recipes/*.py"), *root.glob("benchmarks/*.py")]):
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("birdie_hf"):
                problems += [f"{path.name}: {alias.name}" for alias in node.names if alias.name.startswith("_")]
        if "spec_from_file_location" in text or "sys.path.insert" in text:
            problems.append(f"{path.name}: imports a file by path")
    assert not problems, problems


def test_no_ignore_rule_hides_a_module_of_the_package():
    """A module that `.gitignore` hides works in the checkout that wrote it and is missing from every clone."""
    import shutil
    import subprocess

    root = PACKAGE.parent
    if not (root / ".git").exists() or shutil.which("git") is None:
        return  # an installed copy or an archive: nothing to compare with
    ignored = subprocess.run(
        ["git", "ls-files", "--others", "--ignored", "--exclude-standard", "--", "birdie_hf", "tests", "recipes"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert [path for path in ignored if path.endswith(".py")] == []
