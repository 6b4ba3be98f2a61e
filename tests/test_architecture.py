"""The package's layout, read from its source (see ``docs/internals.md``).

Subpackages form a pipeline; each imports only from the layers before it.
Imports inside functions count: a lazy import does not hide a cycle.
"""
from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "mixedlm_ext"

# The documented order (docs/internals.md): a module may import from its own
# layer's subpackage and from earlier layers only.
LAYERS = [
    ("core", "datasets"),
    ("spec",),
    ("syntax",),
    ("structures",),
    ("design",),
    ("engines",),
    ("fit",),
    ("scale",),
    ("inference",),
    ("postestimation",),
    ("results",),
    ("model",),
    ("api",),
    ("sklearn", "cli", "statsmodels_api"),
    ("__init__", "__main__"),
]
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()
TREES = {name: ast.parse(path.read_text(encoding="utf-8")) for name, path in MODULES.items()}


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _resolve(module: str, node: ast.ImportFrom) -> list[str]:
    """Package-internal modules named by a ``from ... import`` (relative or absolute)."""
    if node.level:
        base = module.split(".") if _is_package(module) and module != "__init__" else module.split(".")[:-1]
        if module == "__init__":
            base = []
        up = node.level - 1
        base = base[: len(base) - up] if up else base
        target = base + (node.module.split(".") if node.module else [])
    elif node.module and (node.module == "mixedlm_ext" or node.module.startswith("mixedlm_ext.")):
        target = node.module.split(".")[1:]
    else:
        return []
    name = ".".join(target) or "__init__"
    found = []
    for alias in node.names:  # ``from .pkg import module``
        sub = (name + "." + alias.name) if name != "__init__" else alias.name
        if sub in MODULES:
            found.append(sub)
    if name in MODULES and len(found) < len(node.names):
        found.append(name)
    return found


def _imports() -> dict[str, set[str]]:
    graph = defaultdict(set)
    for module, tree in TREES.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                for tgt in _resolve(module, node):
                    if tgt != module:
                        graph[module].add(tgt)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("mixedlm_ext."):
                        tgt = alias.name.split(".", 1)[1]
                        if tgt in MODULES:
                            graph[module].add(tgt)
    return graph


GRAPH = _imports()


def _layer(module: str) -> int:
    head = module.split(".")[0]
    for i, names in enumerate(LAYERS):
        if head in names:
            return i
    raise AssertionError("module %s is in no documented layer; add it to LAYERS and docs/internals.md" % module)


def test_every_module_has_a_layer():
    for module in MODULES:
        _layer(module)


def test_no_import_cycles():
    state: dict[str, int] = {}
    cycles = []

    def visit(m, stack):
        state[m] = 1
        stack.append(m)
        for t in sorted(GRAPH.get(m, ())):
            if state.get(t) == 1:
                cycles.append(stack[stack.index(t):] + [t])
            elif t not in state:
                visit(t, stack)
        stack.pop()
        state[m] = 2

    for m in sorted(MODULES):
        if m not in state:
            visit(m, [])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_imports_only_downward():
    bad = []
    for m, targets in GRAPH.items():
        for t in targets:
            same_subpackage = m.split(".")[0] == t.split(".")[0]
            if not same_subpackage and _layer(t) >= _layer(m) and not t.startswith("__init__"):
                bad.append("%s -> %s" % (m, t))
            if t == "__init__" and m not in ("__main__",):
                bad.append("%s -> %s" % (m, t))
    assert not bad, "imports that do not go down the layers: " + ", ".join(sorted(bad))


def test_module_size():
    big = {m: len(p.read_text().splitlines()) for m, p in MODULES.items()}
    big = {m: n for m, n in big.items() if n > MAX_MODULE_LINES}
    assert not big, "modules over %d lines: %s" % (MAX_MODULE_LINES, big)


def _body_lines(fn: ast.AST) -> int:
    body = list(fn.body)
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[1:]
    if not body:
        return 0
    return body[-1].end_lineno - body[0].lineno + 1


def test_function_size():
    long = []
    for m, tree in TREES.items():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = _body_lines(node)
                if n > MAX_FUNCTION_LINES:
                    long.append("%s.%s (%d lines)" % (m, node.name, n))
    assert not long, "functions over %d lines: %s" % (MAX_FUNCTION_LINES, ", ".join(long))


def _top_level_definitions(tree: ast.Module) -> dict[str, str]:
    out = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            out[node.name] = "function"
        elif isinstance(node, ast.ClassDef):
            out[node.name] = "class"
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if isinstance(t, ast.Name):
                    out[t.id] = "name"
    return out


DEFINITIONS = {m: _top_level_definitions(t) for m, t in TREES.items()}


def test_no_private_function_or_class_imported_from_another_module():
    bad = []
    for m, tree in TREES.items():
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom):
                continue
            for tgt in _resolve(m, node):
                for alias in node.names:
                    kind = DEFINITIONS.get(tgt, {}).get(alias.name)
                    if alias.name.startswith("_") and not alias.name.startswith("__") \
                            and kind in ("function", "class"):
                        bad.append("%s imports %s.%s" % (m, tgt, alias.name))
    assert not bad, "private names imported across modules: " + ", ".join(sorted(set(bad)))


def test_no_top_level_name_defined_twice():
    where = defaultdict(list)
    for m, defs in DEFINITIONS.items():
        for name in defs:
            if not (name.startswith("__") and name.endswith("__")):
                where[name].append(m)
    dup = {n: ms for n, ms in where.items() if len(ms) > 1}
    assert not dup, "names defined in more than one module: %s" % dup


@pytest.mark.parametrize("name", ["mixedlm_ext.egg-info"])
def test_build_artifacts_not_tracked(name):
    root = PACKAGE.parent
    gitignore = (root / ".gitignore").read_text()
    assert "*.egg-info" in gitignore


def _state(obj) -> dict:
    """Every attribute of ``obj`` as pickled bytes (a change anywhere shows)."""
    import pickle

    return {k: pickle.dumps(v) for k, v in vars(obj).items()}


@pytest.mark.parametrize("command,dataset", [
    ("mixed weight week || id: week, covariance(unstructured)", "pig"),
    ("mixed gsp private emp hwy || region: || state:, reml", "productivity"),
    ("mixed diameter || _all: R.plate || _all: R.sample", "penicillin"),
    ("mixed follicles sin1 cos1 || mare:, residuals(ar 1, t(time))", "ovary"),
])
def test_fit_never_changes_the_model(command, dataset):
    """Two fits (and postestimation on them) leave the model, its design and its
    objective exactly as they were: caches live on the results."""
    import warnings

    import mixedlm_ext as mx

    model = mx.MixedLMExt.from_stata(command, mx.load_dataset(dataset))
    before = [_state(model), _state(model.design), _state(model.objective)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(2):
            res = model.fit()
            res.predict(kind="fitted")
            _ = res.random_effects, res.summary().as_text(), res.bse
    after = [_state(model), _state(model.design), _state(model.objective)]
    for what, b, a in zip(("model", "design", "objective"), before, after):
        assert b.keys() == a.keys(), "%s gained or lost attributes: %s" % (what, set(a) ^ set(b))
        changed = [k for k in b if b[k] != a[k]]
        assert not changed, "%s attributes changed by fit(): %s" % (what, changed)
