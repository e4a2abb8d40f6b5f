"""The structure the code promises (README, "Architecture"): layers, no cycles, imports at the top, small modules,
RQ jobs referenced as functions. `make lint` runs import-linter too; here the suite guards the same rules."""

import ast
import re
from pathlib import Path

import pytest
from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("wedbackup", "providers", "backups", "costs", "console")
MAX_LOCAL_IMPORTS = 15
MAX_MODULE_LINES = 410  # "about 400": split before it grows past this


def project_modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py") if "migrations" not in p.parts)


def local_imports_of_own_modules(path: Path) -> list[int]:
    """Line numbers of imports of the project's own modules made inside a function."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for sub in ast.walk(node):
            own_from = isinstance(sub, ast.ImportFrom) and (sub.level or (sub.module or "").split(".")[0] in PACKAGES)
            own = isinstance(sub, ast.Import) and any(a.name.split(".")[0] in PACKAGES for a in sub.names)
            if own_from or own:
                lines.append(sub.lineno)
    return lines


def is_import_or_blank(line: str) -> bool:
    stripped = line.strip()
    return not stripped or (stripped.startswith(("from ", "import ")) and "#" not in stripped)


def test_the_layer_and_acyclic_contracts_hold(monkeypatch):
    monkeypatch.chdir(ROOT)
    assert lint_imports(config_filename=str(ROOT / ".importlinter"), no_logo=True, no_cache=True) == 0


def test_function_local_imports_are_few_and_each_says_why():
    found = {(p.relative_to(ROOT), n) for p in project_modules() for n in local_imports_of_own_modules(p)}
    assert len(found) < MAX_LOCAL_IMPORTS, sorted(found)
    for path, lineno in found:
        source = (ROOT / path).read_text().splitlines()
        first = lineno - 1
        while first > 0 and is_import_or_blank(source[first - 1]):
            first -= 1  # the reason may stand once above a block of such imports
        reason = source[lineno - 1] + source[first - 1]
        assert "#" in reason, f"{path}:{lineno}: a function-local import needs a one-line reason"


def test_the_counter_finds_a_function_local_import(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("import os\n\n\ndef f():\n    from backups.models import Wedding\n    from os import path\n")
    assert local_imports_of_own_modules(module) == [5]


@pytest.mark.parametrize("path", project_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_is_over_the_size_limit(path):
    assert len(path.read_text().splitlines()) <= MAX_MODULE_LINES


def test_rq_jobs_are_referenced_as_functions_not_dotted_strings():
    enqueue_by_name = re.compile(r"""\.enqueue(?:_in|_at)?\(\s*["']""")
    offenders = [f"{p.relative_to(ROOT)}:{i}" for p in project_modules()
                 for i, line in enumerate(p.read_text().splitlines(), 1) if enqueue_by_name.search(line)]
    assert offenders == []
