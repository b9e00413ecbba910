"""BUILD is written from the real tree by tools/update_build.py: every module, main, tool and test
has a target, and each target's deps are the geoest packages its files import; and each module's
tests are found by its name."""
import ast
import importlib.util
import pathlib

REPO = pathlib.Path(__file__).resolve().parents[1]
# Modules with logic whose tests are not (yet) in a file of their name, and the file that holds
# them. It only shrinks: a module leaves it when its tests move into tests/test_<module>.py.
TESTED_ELSEWHERE = {
    "geoest/inference/confidence_scores.py": "test_confidence_e2e.py (through python -m geoest.calibrate)",
    "geoest/inference/temperature_fit.py": "test_confidence_e2e.py (through python -m geoest.calibrate)",
}


def _update_build():
    spec = importlib.util.spec_from_file_location("update_build", REPO / "tools" / "update_build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _targets(text):
    """(kind, attributes) of every rule in a BUILD text, read by executing it as Starlark-like Python."""
    rules = []

    def rule(kind):
        return lambda **kwargs: rules.append((kind, kwargs))

    namespace = {k: rule(k) for k in ("py_library", "py_binary", "py_test")}
    namespace.update(load=lambda *a: None, package=lambda **k: None, glob=lambda *a, **k: [])
    exec(compile(text, "BUILD", "exec"), namespace)
    return rules


def test_build_is_generated_from_the_tree():
    assert (REPO / "BUILD").read_text(encoding="utf-8") == _update_build().render(), (
        "BUILD is stale: run python tools/update_build.py")


def test_every_file_has_one_target_and_deps_name_real_targets():
    rules = _targets(_update_build().render())
    names = [r["name"] for _, r in rules]
    assert len(names) == len(set(names)), "duplicate target names"
    listed = [s for _, r in rules for s in r["srcs"]]
    assert len(listed) == len(set(listed)), "a file in two targets"
    real = {str(p.relative_to(REPO)) for d in ("geoest", "tools") for p in (REPO / d).rglob("*.py")
            if "__pycache__" not in p.parts} | {str(p.relative_to(REPO)) for p in (REPO / "tests").glob("*.py")}
    assert set(listed) == real
    unknown = {d for _, r in rules for d in r["deps"]} - {f":{n}" for n in names}
    assert not unknown, f"deps on undefined targets: {sorted(unknown)}"


def _tiny_tree(root, geo_source):
    """A tree shaped like geoest's with every package, the geo core holding `geo_source`."""
    files = {"geoest/__init__.py": "from geoest.errors import InputError\n", "geoest/errors.py": "",
             "geoest/cli.py": "", "geoest/geo/__init__.py": geo_source,
             "tools/benchmarks/bench.py": "", "tests/conftest.py": "", "tests/test_x.py": "import geoest.geo\n"}
    update_build = _update_build()
    files.update({f"geoest/{p}/__init__.py": "" for p in update_build.PACKAGES if p != "geo"})
    files.update({f"geoest/{m}.py": "" for m in update_build.MAINS})
    files["geoest/demo/__main__.py"] = ""
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def test_a_forbidden_import_is_caught_and_shows_in_the_deps(tmp_path, monkeypatch):
    update_build = _update_build()
    monkeypatch.setattr(update_build, "REPO", tmp_path)
    _tiny_tree(tmp_path, "import numpy\nfrom geoest.errors import InputError\n")
    assert update_build.broken_import_rules() == []
    deps = {r["name"]: r["deps"] for _, r in _targets(update_build.render())}
    assert deps["geo"] == [":geoest"] and deps["test_x"] == [":test_helpers", ":geo"]

    # an import inside a function counts as much as one at the top
    _tiny_tree(tmp_path, "def f():\n    from geoest.scene import CONCEPTS\n")
    assert update_build.broken_import_rules() == [
        "geoest/geo/__init__.py: imports geoest.scene (the geo core is pure geometry (§3.1, §3.4))"]
    deps = {r["name"]: r["deps"] for _, r in _targets(update_build.render())}
    assert deps["geo"] == [":scene"]


def test_layering_rules_name_the_rule_that_breaks(tmp_path, monkeypatch):
    update_build = _update_build()
    monkeypatch.setattr(update_build, "REPO", tmp_path)
    _tiny_tree(tmp_path, "")
    (tmp_path / "geoest/data/__init__.py").write_text("import geoest.models\n")
    (tmp_path / "geoest/training/__init__.py").write_text("from geoest.inference import x\n")
    (tmp_path / "geoest/train.py").write_text("import geoest.demo\n")
    (tmp_path / "tools/benchmarks/bench.py").write_text("import conftest\n")
    (tmp_path / "geoest/inference/__init__.py").write_text("from geoest import cli\n")   # a module of a package
    problems = update_build.broken_import_rules()
    assert any(p.startswith("geoest/data/__init__.py: imports geoest.models (the input pipeline") for p in problems)
    assert any(p.startswith("geoest/training/__init__.py: imports geoest.inference (training and") for p in problems)
    assert any(p.startswith("geoest/train.py: imports geoest.demo (the library never") for p in problems)
    assert any(p.startswith("tools/benchmarks/bench.py: imports tests.conftest (benchmarks") for p in problems)
    assert any(p.startswith("geoest/inference/__init__.py: imports geoest.cli (library functions take data")
               for p in problems)


def test_the_tree_keeps_the_import_rules():
    """geo imports no other package; scene/models/data stay below training and inference; ..."""
    assert _update_build().broken_import_rules() == []


def _has_logic(path: pathlib.Path) -> bool:
    """A module defining a function or class that is not a thin main (`cli.run(main)`)."""
    source = path.read_text(encoding="utf-8")
    if path.name in ("__init__.py", "__main__.py") or source.rstrip().endswith("cli.run(main)"):
        return False
    body = ast.parse(source).body
    return any(isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not (
        isinstance(node, ast.ClassDef) and not any(isinstance(n, ast.FunctionDef) for n in node.body))
        for node in body)


def test_every_module_with_logic_has_a_test_file_named_after_it():
    tests = {p.name for p in (REPO / "tests").glob("test_*.py")}
    untested = {}
    for path in sorted((REPO / "geoest").rglob("*.py")):
        module = str(path.relative_to(REPO))
        names = {f"test_{path.stem}.py", f"test_{path.parent.name}_{path.stem}.py"}
        if _has_logic(path) and not names & tests:
            untested[module] = TESTED_ELSEWHERE.get(module)
    assert all(untested.values()), f"modules without tests/test_<module>.py: {[m for m, t in untested.items() if not t]}"
    assert set(untested) == set(TESTED_ELSEWHERE), (
        f"TESTED_ELSEWHERE names modules that have their own test file now: {sorted(set(TESTED_ELSEWHERE) - set(untested))}")
    for module, where in TESTED_ELSEWHERE.items():
        assert all((REPO / "tests" / name).is_file() for name in where.split(" (")[0].split(", ")), (module, where)
