"""Imports sit at the top of every module, read from the real sources as tools/update_build.py reads
them. The one exception is a lazy TensorFlow / Keras import (or of another Keras backend, for
tools/benchmarks/model_step.py): an import inside a function is allowed where the module, at import,
loads neither (directly or through the geoest modules it imports at its top) and the import brings
one of them in; the s2geometry bindings, which the geo core imports only where it uses them; and, in
geoest.cli, what an accelerator machine with only Keras lacks (`DEVICE_LIGHT`).
`PROMISED_TF_FREE` lists the modules that keep that promise, checked in a fresh interpreter. No
geoest modules import each other in a circle."""
import ast
import functools
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
HEAVY = ("tensorflow", "keras", "tensorflow_datasets", "jax", "torch")   # TF, Keras and its other backends
# The geo core needs only numpy at import: tools/benchmarks/model_step.py imports geoest.models (and so
# geoest.geo) on an accelerator machine that has Keras but may lack the s2geometry bindings
# (tests/test_model_step.py); the few functions that use them import them.
# The optional extras (OpenCV for `scene`, Spark and Ray for `download`) are imported where they are used,
# so that a missing extra is one line naming it rather than a failed import of the whole module.
OPTIONAL = ("cv2", "pyspark", "ray")
LAZY = HEAVY + ("s2geometry",) + OPTIONAL
# Importing these loads neither TensorFlow nor Keras (the mains, so that --help and a flag error are
# immediate; the geo core and the scene hierarchy, so that numpy users need no TF; geoest.inference,
# whose functions import TF when called).
PROMISED_TF_FREE = ("geoest", "geoest.geo", "geoest.scene", "geoest.data.meta_csv", "geoest.inference", "geoest.cli",
                    "geoest.train", "geoest.evaluate", "geoest.predict", "geoest.export", "geoest.calibrate",
                    "geoest.create_partitioning", "geoest.build_tfrecords", "geoest.label_scenes",
                    "geoest.scene_stats", "geoest.score_predictions", "geoest.draw_cells", "geoest.demo")
# geoest.cli is imported on an accelerator machine that has only Keras, numpy, gin and absl
# (tools/benchmarks/model_step.py, held to it by tests/test_model_step.py): what needs more is imported
# where it is used. {file: {imported module}}; an entry no longer needed fails the test.
DEVICE_LIGHT = {"geoest/cli.py": {"geoest.inference.methods"}}


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _source(module: str):
    base = REPO.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _imported(node) -> list:
    """The modules one import statement brings in, most specific first: `from geoest.inference import
    calibration` is geoest.inference.calibration; `from geoest.geo import Hierarchy` is geoest.geo."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level or not node.module:
        return []
    modules = [f"{node.module}.{alias.name}" for alias in node.names if _source(f"{node.module}.{alias.name}")]
    return modules or [node.module]


@functools.lru_cache(maxsize=None)
def _statements(path: pathlib.Path):
    """(top-level imports, imports inside functions or classes) of a file: lists of (line, [modules])."""
    top, nested = [], []

    def visit(node, inside):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                (nested if inside else top).append((child.lineno, _imported(child)))
            visit(child, inside or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef,
                                                      ast.Lambda)))

    visit(ast.parse(path.read_text(encoding="utf-8"), str(path)), False)
    return top, nested


@functools.lru_cache(maxsize=None)
def loads_tf(module: str, _seen: frozenset = frozenset()) -> bool:
    """Whether importing `module` loads TensorFlow or Keras: it is one, or it, a package above it or a
    geoest module it imports at its top does."""
    if module.split(".")[0] in HEAVY:
        return True
    path = _source(module)
    if path is None or module in _seen:
        return False
    parts = module.split(".")
    above = [".".join(parts[:i]) for i in range(1, len(parts))]
    imported = [m for _, modules in _statements(path)[0] for m in modules]
    return any(loads_tf(m, _seen | {module}) for m in above + imported)


def _sources():
    return sorted(p for d in ("geoest", "tools") for p in (REPO / d).rglob("*.py") if "__pycache__" not in p.parts)


def test_imports_are_at_the_top_but_lazy_tensorflow_ones():
    found = {}
    for path in _sources():
        module = _module_name(path)
        for line, modules in _statements(path)[1]:
            if all(m.split(".")[0] in LAZY for m in modules) and not loads_tf(module) or (
                    not loads_tf(module) and any(loads_tf(m) for m in modules)):
                continue                                   # a lazy import that keeps a promise
            found.setdefault(str(path.relative_to(REPO)), set()).update(modules)
    unexpected = {f: sorted(m - DEVICE_LIGHT.get(f, set())) for f, m in found.items() if m - DEVICE_LIGHT.get(f, set())}
    assert not unexpected, f"imports inside functions that belong at the top: {unexpected}"
    still_lazy = {f: found.get(f, set()) & m for f, m in DEVICE_LIGHT.items()}
    assert still_lazy == DEVICE_LIGHT, "DEVICE_LIGHT lists an import that is at the top now"


def test_the_modules_promised_tf_free_load_neither_tensorflow_nor_keras():
    assert not [m for m in PROMISED_TF_FREE if loads_tf(m)]           # as the sources say ...
    for name in PROMISED_TF_FREE:                                        # ... and as Python finds
        probe = (f"import sys, {name}\n"        # one process each: every main defines its own flags
                 "print([m for m in ('tensorflow', 'keras') if m in sys.modules])")
        done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0 and done.stdout.strip() == "[]", (name, done.stdout, done.stderr[-2000:])


def _circles() -> list:
    """The strongly connected groups (more than one module) of geoest's import graph, imports at any depth."""
    graph = {}
    for path in (p for p in _sources() if p.parts[len(REPO.parts)] == "geoest"):
        top, nested = _statements(path)
        graph[_module_name(path)] = {m for _, modules in top + nested for m in modules if m.startswith("geoest.")}
    order, low, stack, circles, counter = {}, {}, [], [], [0]

    def connect(node):                                     # Tarjan's algorithm
        order[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        for other in graph[node]:
            if other not in graph:
                continue
            if other not in order:
                connect(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], order[other])
        if low[node] == order[node]:
            group = set()
            while not group or node not in group:
                group.add(stack.pop())
            if len(group) > 1:
                circles.append(group)

    for node in sorted(graph):
        if node not in order:
            connect(node)
    return circles


def test_no_import_circle():
    assert _circles() == []


def test_the_rule_sees_a_misplaced_import(tmp_path, monkeypatch):
    """A TF-free import inside a function of a TF-free module is found; a lazy TF import there is not."""
    package = tmp_path / "geoest"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "light.py").write_text("import os\n\ndef f():\n    import json\n    import tensorflow\n")
    (package / "heavy.py").write_text("import keras\n\ndef f():\n    import tensorflow\n")
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    _statements.cache_clear()
    loads_tf.cache_clear()
    try:
        light, heavy = package / "light.py", package / "heavy.py"
        assert not loads_tf("geoest.light") and loads_tf("geoest.heavy")
        allowed = [(not loads_tf(name) and any(loads_tf(m) for m in modules))
                   for name, path in (("geoest.light", light), ("geoest.heavy", heavy))
                   for _, modules in _statements(path)[1]]
        assert allowed == [False, True, False]   # json: move it up; tensorflow: lazy; in heavy: pointless
    finally:
        _statements.cache_clear()
        loads_tf.cache_clear()
