"""BUILD lists the real files: every module, main and test has a target, every listed file exists."""
import pathlib

REPO = pathlib.Path(__file__).resolve().parents[1]


def _targets():
    rules = []

    def rule(kind):
        def add(**kwargs):
            rules.append((kind, kwargs))
        return add

    namespace = {k: rule(k) for k in ("py_library", "py_binary", "py_test")}
    namespace.update(load=lambda *a: None, package=lambda **k: None, glob=lambda *a, **k: [])
    exec(compile((REPO / "BUILD").read_text(), "BUILD", "exec"), namespace)
    return rules


def _listed(rules, kind=None):
    return {src for k, r in rules if kind in (None, k) for src in r.get("srcs", [])}


def test_every_listed_file_exists_and_names_are_unique():
    rules = _targets()
    names = [r["name"] for _, r in rules]
    assert len(names) == len(set(names)), "duplicate target names"
    missing = sorted(s for s in _listed(rules) if not (REPO / s).is_file())
    assert not missing, f"BUILD lists files that do not exist: {missing}"
    known = {f":{n}" for n in names}
    unknown = sorted(d for _, r in rules for d in r.get("deps", [])
                     if d.startswith(":") and d not in known)
    assert not unknown, f"BUILD depends on undefined targets: {unknown}"


def test_every_real_file_has_a_target():
    rules = _targets()
    libraries = _listed(rules, "py_library") | _listed(rules, "py_binary")
    modules = {str(p.relative_to(REPO)) for p in (REPO / "geoest").rglob("*.py")}
    assert not sorted(modules - libraries), f"modules without a target: {sorted(modules - libraries)}"
    mains = {str(p.relative_to(REPO)) for p in (REPO / "tools").rglob("*.py")}
    binaries = _listed(rules, "py_binary")
    assert not sorted(mains - binaries), f"tools without a py_binary: {sorted(mains - binaries)}"
    tests = {str(p.relative_to(REPO)) for p in (REPO / "tests").glob("test_*.py")}
    py_tests = _listed(rules, "py_test")
    assert not sorted(tests - py_tests), f"tests without a py_test: {sorted(tests - py_tests)}"
