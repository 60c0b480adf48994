"""The apps' imports run one way (README, "Layout"): read from the code with ast.

pipeline is the bottom and imports no other app of ours; billing and audits
stand on pipeline only; receivables (asking the customer for money) stands on
billing; reminders reads those four; dashboards reads those five; hooks
(webhooks, chat, the calendar feed) sits beside it, on the same five; the api
reads everyone but hooks and nobody reads it. No import hides inside a function
to reach another app, and no models module knows a cache exists.
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


def _modules():
    for path in sorted(ROOT.glob("*/**/*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in APPS and "migrations" not in rel.parts:
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


def test_no_import_inside_a_function_reaches_another_app():
    hidden = [
        f"{rel}:{line} {target}"
        for rel, line, target, inside in _imports()
        if inside and target.split(".")[0] in APPS and target.split(".")[0] != rel.parts[0]
    ]
    assert hidden == []


def test_no_models_module_knows_a_cache_exists():
    cached = [
        f"{rel}:{line} {target}"
        for rel, line, target, _ in _imports()
        if (rel.name == "models.py" or "models" in rel.parts[:-1])
        and ("cache" in target or "freshness" in target)
    ]
    assert cached == []
