"""The package layering of ../shared/DESIGN.md, checked on the source: every import of every module.

The checker parses each module of ``src/scalinglab`` with :mod:`ast` and collects its imports: absolute
and relative, at module level and inside functions (and under ``if TYPE_CHECKING:``), plus
``importlib.import_module("...")`` with a constant name. The rules (DESIGN.md, "Package layout"):

* ``laws``, ``fit``, ``plan`` and the neutral modules (``runconfig``, ``accounting``, ``units``,
  ``table``, ``store``) never import torch, directly or through the modules they load;
* ``ladder`` never imports SciPy, directly or through the modules it loads;
* ``laws`` imports none of ``fit``, ``plan``, ``report``, ``table`` (nor anything else above it), and
  holds closed forms only: no ``scipy.optimize`` (the optimisers are in ``plan``);
* ``store`` imports nothing of ``ladder``, ``execute``, ``cli``;
* ``fit`` imports nothing of ``plan``, ``report``, ``cli``; ``plan`` nothing of ``report``, ``cli``;
* nothing outside ``cli`` imports ``cli``;
* no private name (a leading underscore: a module ``_x`` or a name ``_x``) is imported, or reached as an
  attribute of an imported module, across packages;
* library errors (a ``raise`` outside ``cli``) do not name command-line flags such as ``--max-tokens``:
  the library names its parameter, the command line may add its flag.

Every violation is reported with its file and line. ``test_the_checker_catches_*`` feed the checker
synthetic sources, so the rules are known to fail when broken.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
ROOT_PACKAGE = "scalinglab"

#: areas that must not load torch, even through another module
TORCH_FREE = ("laws", "fit", "plan", "runconfig", "accounting", "units", "table", "store")
#: areas that must not load SciPy, even through another module
SCIPY_FREE = ("ladder",)
#: area -> the scalinglab areas it must not import
FORBIDDEN = {
    "laws": ("fit", "plan", "report", "table", "store", "ladder", "execute", "ingest", "cli", "quickstart"),
    "store": ("ladder", "execute", "cli"),
    "fit": ("plan", "report", "cli"),
    "plan": ("report", "cli"),
    "report": ("cli",),
}
#: area -> external modules it must not import directly (laws: closed forms only)
FORBIDDEN_EXTERNAL = {"laws": ("scipy.optimize",)}
#: a command-line flag in a message (``--max-tokens``), not a decrement or a rule of dashes
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
#: callees whose arguments are error messages: scalinglab.errors.invalid and validators
VALIDATOR = re.compile(r"^invalid$|check|positive|validate")


@dataclass(frozen=True)
class Module:
    """One source module: its dotted name, the path shown in reports, its text, and whether it is a package."""

    name: str
    path: str
    source: str
    is_package: bool = False


@dataclass(frozen=True)
class Import:
    """One imported module (``target``), with the name taken from it (``name``, or None for the module)."""

    line: int
    target: str
    name: str | None
    runtime: bool        # executed when the module is imported (module level, not under TYPE_CHECKING)


def load_tree(src: Path = SRC) -> dict[str, Module]:
    """Every module under ``src/scalinglab``, by dotted name."""
    out = {}
    for path in sorted((src / ROOT_PACKAGE).rglob("*.py")):
        rel = path.relative_to(src).with_suffix("")
        parts = list(rel.parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        name = ".".join(parts)
        out[name] = Module(name, str(path.relative_to(src.parent)), path.read_text(), is_package)
    return out


def area(module: str) -> str:
    """The package a module belongs to: ``scalinglab.fit.core`` -> ``fit``; ``scalinglab.units`` -> ``units``;
    ``scalinglab.__main__`` (``python -m scalinglab``, an entry point like the ``scalinglab`` script) -> ``cli``."""
    if module == f"{ROOT_PACKAGE}.__main__":
        return "cli"
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == ROOT_PACKAGE else ("" if module == ROOT_PACKAGE else module)


def _within(target: str, prefix: str) -> bool:
    return target == prefix or target.startswith(prefix + ".")


def _private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _resolve(mod: Module, level: int, module: str | None) -> str:
    base = mod.name.split(".") if mod.is_package else mod.name.split(".")[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def imports(mod: Module, known: Iterable[str] = ()) -> tuple[list[Import], dict[str, str]]:
    """The imports of ``mod``, and the local names bound to scalinglab modules (alias -> module).

    ``known`` are the dotted names of the scalinglab modules, to tell ``from pkg import module`` from
    ``from module import name``.
    """
    known = set(known)
    tree = ast.parse(mod.source, filename=mod.path)
    found: list[Import] = []
    aliases: dict[str, str] = {}

    def visit(node: ast.AST, runtime: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                visit(child, False)
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.body:
                    visit(ast.Module(body=[stmt], type_ignores=[]), False)
                for stmt in child.orelse:
                    visit(ast.Module(body=[stmt], type_ignores=[]), runtime)
            else:
                record(child, runtime)
                visit(child, runtime)

    def record(node: ast.AST, runtime: bool) -> None:
        if isinstance(node, ast.Import):
            for a in node.names:
                found.append(Import(node.lineno, a.name, None, runtime))
                if a.name in known:
                    aliases[a.asname or a.name] = a.name
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(mod, node.level, node.module) if node.level else (node.module or "")
            for a in node.names:
                full = f"{base}.{a.name}"
                if full in known:
                    found.append(Import(node.lineno, full, None, runtime))
                    aliases[a.asname or a.name] = full
                else:
                    found.append(Import(node.lineno, base, a.name, runtime))
        elif isinstance(node, ast.Call):
            f = node.func
            dynamic = (isinstance(f, ast.Attribute) and f.attr == "import_module") or (
                isinstance(f, ast.Name) and f.id in ("import_module", "__import__"))
            if dynamic and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                found.append(Import(node.lineno, node.args[0].value, None, False))

    visit(tree, True)
    return found, aliases


def _private_attributes(mod: Module, aliases: Mapping[str, str]) -> list[tuple[int, str, str]]:
    """``alias._name`` uses in ``mod`` where ``alias`` is a scalinglab module: (line, module, name)."""
    out = []
    for node in ast.walk(ast.parse(mod.source, filename=mod.path)):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                and _private(node.attr)):
            out.append((node.lineno, aliases[node.value.id], node.attr))
    return out


def _callee(node: ast.Call) -> str:
    f = node.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""


def _flags_in_errors(mod: Module) -> list[tuple[int, str]]:
    """Command-line flags named in ``mod``'s error messages: (line, flag).

    A message is a string in a ``raise`` statement, or an argument of ``invalid(...)`` or of a validator
    that builds the message from what it is given (a callee whose name has ``check``, ``positive`` or
    ``validate`` in it).
    """
    roots: list[ast.AST] = []
    for node in ast.walk(ast.parse(mod.source, filename=mod.path)):
        if isinstance(node, ast.Raise) and node.exc is not None:
            roots.append(node.exc)
        elif isinstance(node, ast.Call) and VALIDATOR.search(_callee(node)):
            roots += [*node.args, *(k.value for k in node.keywords)]
    found = set()
    for root in roots:
        for sub in ast.walk(root):
            if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                found |= {(sub.lineno, m.group(0)) for m in FLAG.finditer(sub.value)}
    return sorted(found)


def _runtime_closure(modules: Mapping[str, Module], table: Mapping[str, list[Import]]) -> dict[str, list[str]]:
    """For each module, the scalinglab modules it loads at import time (itself, its packages, theirs...)."""
    def loads(target: str) -> list[str]:
        """The modules that importing ``target`` executes: every package on its path, and itself."""
        parts = target.split(".")
        return [m for m in (".".join(parts[:i]) for i in range(1, len(parts) + 1)) if m in modules]

    edges = {name: sorted({m for imp in table[name] if imp.runtime for m in loads(imp.target)} - {name})
             for name in modules}
    closure: dict[str, list[str]] = {}
    for start in modules:
        seen = set(loads(start)) | {start}
        todo = list(seen)
        while todo:
            for nxt in edges[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        closure[start] = sorted(seen)
    return closure


def violations(modules: Mapping[str, Module]) -> dict[str, list[str]]:
    """Every violation of the layering rules, by rule name, each ``path:line: message``."""
    table: dict[str, list[Import]] = {}
    private_attrs: dict[str, list[tuple[int, str, str]]] = {}
    for name, mod in modules.items():
        table[name], aliases = imports(mod, modules)
        private_attrs[name] = _private_attributes(mod, aliases)
    out: dict[str, list[str]] = {"torch": [], "scipy": [], "layers": [], "cli": [], "private": [], "flags": []}

    # direct rules: every import, wherever it is
    for name, mod in modules.items():
        a = area(name)
        for imp in table[name]:
            where = f"{mod.path}:{imp.line}"
            target = imp.target if imp.name is None else f"{imp.target}.{imp.name}"
            if a in TORCH_FREE and _within(imp.target, "torch"):
                out["torch"].append(f"{where}: {a} imports {imp.target} (no torch under {a})")
            if a in SCIPY_FREE and _within(imp.target, "scipy"):
                out["scipy"].append(f"{where}: {a} imports {imp.target} (no SciPy under {a})")
            for ext in FORBIDDEN_EXTERNAL.get(a, ()):
                if _within(target, ext):
                    out["layers"].append(f"{where}: {a} imports {target} ({a} must not import {ext})")
            if not _within(imp.target, ROOT_PACKAGE):
                continue
            b = area(imp.target) if imp.target != ROOT_PACKAGE or imp.name is None else area(target)
            if b in FORBIDDEN.get(a, ()):
                out["layers"].append(f"{where}: {a} imports {target} ({a} must not import {b})")
            if b == "cli" and a != "cli":
                out["cli"].append(f"{where}: {a} imports {target} (nothing outside cli imports cli)")
            if b != a:
                parts = target.split(".")[1:]
                bad = [p for p in parts if _private(p)]
                if bad:
                    out["private"].append(f"{where}: {a} imports the private name {bad[0]!r} of {b} ({target})")
        if a != "cli":
            for line, flag in _flags_in_errors(mod):
                out["flags"].append(f"{mod.path}:{line}: {a} raises an error naming the command-line flag {flag} "
                                    "(name the parameter; the command line may add its flag)")
        for line, target, attr in private_attrs[name]:
            b = area(target)
            if b != a:
                out["private"].append(f"{mod.path}:{line}: {a} uses the private name {attr!r} of {b} "
                                      f"({target}.{attr})")

    # transitive rules: what importing a module loads
    closure = _runtime_closure(modules, table)
    for rule, areas, lib in (("torch", TORCH_FREE, "torch"), ("scipy", SCIPY_FREE, "scipy")):
        for name, mod in modules.items():
            if area(name) not in areas:
                continue
            for imp in table[name]:
                if not imp.runtime or not _within(imp.target, ROOT_PACKAGE):
                    continue
                dep = imp.target if imp.target in modules else None
                if dep is None or area(dep) in areas:
                    continue        # the dependency's own imports are checked where it is
                for m in _reach(closure, modules, table, dep, lib):
                    out[rule].append(f"{mod.path}:{imp.line}: {area(name)} imports {dep}, which loads {lib} "
                                     f"({m})")
    return {k: sorted(set(v), key=_by_place) for k, v in out.items()}


def _by_place(message: str) -> tuple[str, int, str]:
    """Sort key of a violation: its file, then its line as a number."""
    path, line, rest = message.split(":", 2)
    return path, int(line), rest


def _reach(closure: Mapping[str, list[str]], modules: Mapping[str, Module], table: Mapping[str, list[Import]],
           start: str, lib: str) -> list[str]:
    """Where importing ``start`` loads ``lib``: ``path:line`` of each module-level import of it."""
    return [f"{modules[m].path}:{imp.line}" for m in closure[start] for imp in table[m]
            if imp.runtime and _within(imp.target, lib)]


RULES = ("torch", "scipy", "layers", "cli", "private", "flags")


@pytest.fixture(scope="module")
def found() -> dict[str, list[str]]:
    return violations(load_tree())


@pytest.mark.parametrize("rule", RULES)
def test_the_source_tree_keeps_the_layering(found: dict[str, list[str]], rule: str) -> None:
    assert not found[rule], f"{len(found[rule])} violation(s) of rule {rule!r}:\n" + "\n".join(found[rule])


def test_the_tree_is_seen() -> None:
    tree = load_tree()
    assert {"scalinglab.laws", "scalinglab.fit.core", "scalinglab.plan.sparsity", "scalinglab.cli"} <= set(tree)
    core, _ = imports(tree["scalinglab.fit.core"], tree)
    assert any(i.target == "scalinglab.laws" for i in core)           # "from .. import laws as _laws"


def _synthetic(**sources: str) -> dict[str, Module]:
    mods = {}
    for name, text in sources.items():
        dotted = "scalinglab." + name.replace("__", ".")
        is_package = dotted.endswith(".init")
        dotted = dotted.removesuffix(".init")
        mods[dotted] = Module(dotted, f"src/{dotted.replace('.', '/')}{'/__init__' if is_package else ''}.py",
                              text, is_package)
    for pkg in {".".join(m.split(".")[:k]) for m in mods for k in range(1, m.count(".") + 1)}:
        mods.setdefault(pkg, Module(pkg, f"src/{pkg.replace('.', '/')}/__init__.py", "", True))
    return mods


def test_the_checker_catches_every_rule() -> None:
    mods = _synthetic(
        laws__bad="import numpy as np\n\n\ndef f():\n    import torch\n    from scipy.optimize import brentq\n"
                  "    from ..fit.result import Fit\n    return torch, brentq, Fit\n",
        fit__result="from .. import table\n",
        fit___optimize="def _step():\n    pass\n",
        plan__x="from ..fit._optimize import _step\nfrom ..fit import _optimize as opt\nopt._step()\n"
                "from ..report import plots\n",
        report__plots="",
        store__db="from ..ladder import model\nfrom .. import cli\n",
        ladder__model="import torch\nfrom scipy import optimize\n",
        cli__init="raise SystemExit('see --help')\n",
        units="from . import heavy\n\n\ndef f(x):\n    if x:\n        raise ValueError(\n"
              "            f'the token limit --max-tokens must be positive, not {x}')\n    return x - -1\n\n\n"
              "def g(n):\n    return check_positive('the count --n-nonzero', n)\n",
        heavy="import torch\n",
    )
    v = violations(mods)
    assert "src/scalinglab/laws/bad.py:5: laws imports torch (no torch under laws)" in v["torch"]
    assert ("src/scalinglab/laws/bad.py:6: laws imports scipy.optimize.brentq (laws must not import "
            "scipy.optimize)") in v["layers"]
    assert "src/scalinglab/laws/bad.py:7: laws imports scalinglab.fit.result.Fit (laws must not import fit)" \
        in v["layers"]
    assert "src/scalinglab/plan/x.py:4: plan imports scalinglab.report.plots (plan must not import report)" in v["layers"]
    assert "src/scalinglab/store/db.py:1: store imports scalinglab.ladder.model (store must not import ladder)" \
        in v["layers"]
    assert "src/scalinglab/store/db.py:2: store imports scalinglab.cli (nothing outside cli imports cli)" in v["cli"]
    assert "src/scalinglab/ladder/model.py:2: ladder imports scipy (no SciPy under ladder)" in v["scipy"]
    assert any(s.startswith("src/scalinglab/plan/x.py:1: plan imports the private name '_optimize'") for s in v["private"])
    assert any(s.startswith("src/scalinglab/plan/x.py:2: plan imports the private name '_optimize'") for s in v["private"])
    assert "src/scalinglab/plan/x.py:3: plan uses the private name '_step' of fit (scalinglab.fit._optimize._step)" \
        in v["private"]
    # transitive: units is torch-free, and loads torch through another module
    assert ("src/scalinglab/units.py:1: units imports scalinglab.heavy, which loads torch "
            "(src/scalinglab/heavy.py:1)") in v["torch"]
    assert v["flags"] == [
        "src/scalinglab/units.py:7: units raises an error naming the command-line flag --max-tokens "
        "(name the parameter; the command line may add its flag)",
        "src/scalinglab/units.py:12: units raises an error naming the command-line flag --n-nonzero "
        "(name the parameter; the command line may add its flag)"]
    # ladder may import torch
    assert not any(s.startswith("src/scalinglab/ladder/") for s in v["torch"])


def test_the_checker_allows_what_the_rules_allow() -> None:
    mods = _synthetic(
        fit__core="from .. import laws\nfrom ._optimize import _step\nfrom . import _optimize\n_optimize._step()\n",
        fit___optimize="def _step():\n    pass\n",
        laws__init="from . import _base\nfrom ._base import Law\n",
        laws___base="class Law:\n    pass\n",
        plan__x="from ..fit.core import fit\nfrom ..laws import Law\nimport scipy.optimize\n",
        ladder__train="import torch\n\n\ndef f():\n    from .. import laws\n",
        cli__x="from ..plan import x\nfrom . import y\n",
        cli__y="",
    )
    assert violations(mods) == {rule: [] for rule in RULES}


def test_type_checking_imports_count_for_the_layers_but_do_not_load() -> None:
    mods = _synthetic(
        fit__x="from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..plan import y\n",
        plan__y="",
        units="from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import heavy\n",
        heavy="import torch\n",
    )
    v = violations(mods)
    assert v["layers"] == ["src/scalinglab/fit/x.py:3: fit imports scalinglab.plan.y (fit must not import plan)"]
    assert v["torch"] == []


def _loaded_after(statement: str, modules: Iterable[str]) -> list[str]:
    code = (f"import sys\n{statement}\n"
            f"print(','.join(m for m in {list(modules)!r} if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return [m for m in res.stdout.strip().split(",") if m]


def test_importing_the_laws_loads_neither_pandas_nor_torch() -> None:
    assert _loaded_after("import scalinglab.laws", ["pandas", "torch", "scalinglab.fit", "scalinglab.table"]) == []


def test_importing_fit_and_plan_does_not_load_torch() -> None:
    assert _loaded_after("import scalinglab.fit, scalinglab.plan", ["torch", "scalinglab.ladder"]) == []


def test_the_package_entry_point_counts_as_the_command_line() -> None:
    """``scalinglab/__main__.py`` (``python -m scalinglab``) may import cli; any other top-level module may not."""
    assert area("scalinglab.__main__") == "cli"
    mods = _synthetic(cli__init="", other="from .cli import main\n")
    mods["scalinglab.__main__"] = Module("scalinglab.__main__", "src/scalinglab/__main__.py", "from .cli import main\n",
                                         False)
    v = violations(mods)
    assert v["cli"] == ["src/scalinglab/other.py:1: other imports scalinglab.cli.main (nothing outside cli imports cli)"]


def test_python_dash_m_scalinglab_runs_the_command_line() -> None:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    out = subprocess.run([sys.executable, "-m", "scalinglab", "--help"], capture_output=True, text=True, timeout=120,
                         env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("Usage: scalinglab ")
    bad = subprocess.run([sys.executable, "-m", "scalinglab", "no-such-command"], capture_output=True, text=True,
                         timeout=120, env=env)
    assert bad.returncode == 2
