"""The apps' imports run one way (README, "Layout"): read from the code with ast.

pipeline is the bottom and imports no other app of ours; billing and audits
stand on pipeline only; receivables (asking the customer for money) stands on
billing; reminders reads those four; dashboards reads those five; hooks
(webhooks, chat, the calendar feed) sits beside it, on the same five; the api
reads everyone but hooks and nobody reads it. No import of our own code (an
app's, config's) hides inside a function, whether to dodge a circle or to save
start-up time: the one exception is ``AppConfig.ready()``, where Django's
convention connects signal receivers once the models are loaded. No models
module knows a cache exists.
"""

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = sorted(p.parent.name for p in ROOT.glob("*/apps.py"))
ALLOWED = {
    "pipeline": set(),
    "billing": {"pipeline"},
    "receivables": {"pipeline", "billing"},
    "audits": {"pipeline"},
    "online": {"pipeline", "billing", "receivables"},
    "reminders": {"pipeline", "billing", "receivables", "audits"},
    "dashboards": {"pipeline", "billing", "receivables", "audits", "reminders"},
    "hooks": {"pipeline", "billing", "receivables", "audits", "reminders"},
    "api": {"pipeline", "billing", "receivables", "audits", "reminders", "dashboards"},
}


# Our own code: the apps and the project's package. (bench/ holds scripts that
# create their database before Django starts, and tests/ are not shipped.)
OURS = [*APPS, "config"]


def _modules(folders=APPS):
    for path in sorted(ROOT.glob("*/**/*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in folders and "migrations" not in rel.parts:
            yield rel, ast.parse(path.read_text(encoding="utf-8"), str(rel))


def _targets(node: ast.Import | ast.ImportFrom, rel: Path) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:  # relative: inside the same app
        return [rel.parts[0]]
    return [node.module or ""]


def _imports():
    """(app, path, line, imported app, inside a function) for every import of another app."""
    for rel, tree in _modules():
        functions = [
            n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
        ]
        inside = {
            id(i)
            for f in functions
            for i in ast.walk(f)
            if isinstance(i, ast.Import | ast.ImportFrom)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for target in _targets(node, rel):
                    yield rel, node.lineno, target, id(node) in inside


def test_the_apps_are_the_ones_the_layers_name():
    assert set(APPS) == set(ALLOWED)


def test_each_app_imports_only_the_apps_below_it():
    arrows = defaultdict(set)
    wrong = []
    for rel, line, target, _ in _imports():
        source, dest = rel.parts[0], target.split(".")[0]
        if dest in APPS and dest != source:
            arrows[source].add(dest)
            if dest not in ALLOWED[source]:
                wrong.append(f"{rel}:{line} {source} imports {target}")
    assert wrong == []
    # The arrows drawn in the README, and nothing else.
    assert dict(arrows) == {app: deps for app, deps in ALLOWED.items() if deps}


def _is_app_ready(function: ast.FunctionDef | ast.AsyncFunctionDef, parent: ast.AST) -> bool:
    """``ready()`` of an AppConfig: Django's place to connect receivers after the models load."""
    return (
        function.name == "ready"
        and isinstance(parent, ast.ClassDef)
        and any(ast.unparse(base).endswith("AppConfig") for base in parent.bases)
    )


def _hidden_imports(rel: Path, tree: ast.Module):
    """(line, imported module) for every import inside a function of one module, but ready()'s."""
    parents = {id(child): node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    hidden = {}  # a nested function's imports are inside its outer function too: count once
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if rel.name == "apps.py" and _is_app_ready(function, parents[id(function)]):
            continue
        for node in ast.walk(function):
            if isinstance(node, ast.Import | ast.ImportFrom):
                hidden[id(node)] = node
    for node in hidden.values():
        for target in _targets(node, rel):
            yield node.lineno, target


def test_no_import_of_our_own_code_hides_inside_a_function():
    hidden = [
        f"{rel}:{line} {target}"
        for rel, tree in _modules(OURS)
        for line, target in _hidden_imports(rel, tree)
        if target.split(".")[0] in OURS
    ]
    assert hidden == []


def test_the_function_import_check_sees_nested_and_relative_imports_and_spares_ready_only():
    source = (
        "from django.apps import AppConfig\n"
        "class BillingConfig(AppConfig):\n"
        "    def ready(self):\n"
        "        from billing import receivers\n"
        "    def other(self):\n"
        "        from . import services\n"
        "def f():\n"
        "    def g():\n"
        "        import pipeline.services\n"
        "def ready():\n"
        "    from reminders import receivers\n"
    )
    found = list(_hidden_imports(Path("billing/apps.py"), ast.parse(source)))
    assert sorted(found) == [(6, "billing"), (9, "pipeline.services"), (11, "reminders")]


def test_no_models_module_knows_a_cache_exists():
    cached = [
        f"{rel}:{line} {target}"
        for rel, line, target, _ in _imports()
        if (rel.name == "models.py" or "models" in rel.parts[:-1])
        and ("cache" in target or "freshness" in target)
    ]
    assert cached == []
