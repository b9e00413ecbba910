"""Writes BUILD from the source tree: one target per package, main, tool and test, with deps
taken from the real `import geoest...` statements, and checks geoest's import rules.

    python tools/update_build.py            # rewrite BUILD
    python tools/update_build.py --check    # exit 1 when BUILD is stale or a rule is broken

tests/test_build_file.py runs the same checks on every `make test`.
"""
import ast
import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
BENCHMARKS = REPO / "tools" / "benchmarks"

# Library targets in BUILD, one per package of geoest (the top-level modules form `geoest`, but for
# `cli`, the mains' shared flags and flag parsing, which sits above the packages).
PACKAGES = ("geo", "scene", "data", "models", "training", "inference", "reproduction", "demo")
MAINS = ("train", "evaluate", "predict", "export", "calibrate", "create_partitioning", "build_tfrecords",
         "label_scenes", "scene_stats", "score_predictions", "draw_cells", "convert_places365", "download",
         "within_weights", "reproduce")

# The layering (README "The package"): (importer prefix, forbidden imported prefixes, why).
IMPORT_RULES = (
    ("geoest.geo", ("geoest.scene", "geoest.data", "geoest.models", "geoest.training",
                    "geoest.inference", "geoest.demo", "geoest.cli") + tuple(f"geoest.{m}" for m in MAINS),
     "the geo core is pure geometry (§3.1, §3.4)"),
    *((f"geoest.{low}", ("geoest.training", "geoest.inference", "geoest.demo", "geoest.cli", "tools")
       + tuple(f"geoest.{m}" for m in MAINS),
       f"geoest.{low} sits below training, inference, the demo and the mains")
      for low in ("scene", "models", "data")),
    ("geoest.data", ("geoest.models",), "the input pipeline does not depend on the network"),
    ("geoest.training", ("geoest.inference",), "training and inference are siblings"),
    ("geoest.inference", ("geoest.training",), "training and inference are siblings"),
    *((f"geoest.{mid}", ("geoest.cli",) + tuple(f"geoest.{m}" for m in MAINS),
       "library functions take data; flags are parsed in the mains and geoest.cli")
      for mid in ("training", "inference", "reproduction")),
    ("geoest", ("geoest.demo", "tools"), "the library never imports the demo or the tools"),
    ("tools.benchmarks", ("tests",), "benchmarks measure the library, not test helpers"),
)


def module_name(path: pathlib.Path) -> str:
    """`geoest/geo/hierarchy.py` -> `geoest.geo.hierarchy`; `tests/data_helpers.py` -> `tests.data_helpers`."""
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: pathlib.Path) -> set[str]:
    """Every module a file imports, at any depth (function-level imports included; a module taken
    from its package, `from geoest import cli`, counts as geoest.cli).

    Test helpers put on sys.path by a test (`import data_helpers`) are named `tests.<helper>`, and
    a benchmark's sibling (`import mp16_points`) `tools.benchmarks.<sibling>`.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    helpers = {p.stem: "tests" for p in (REPO / "tests").glob("*.py")}
    if path.parent == BENCHMARKS:
        helpers = {p.stem: "tools.benchmarks" for p in BENCHMARKS.glob("*.py")}
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from geoest import cli` imports the module geoest.cli as well as the package.
            folder = REPO.joinpath(*node.module.split("."))
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names
                                     if (folder / f"{alias.name}.py").is_file() or (folder / alias.name).is_dir()]
        else:
            continue
        for name in names:
            found.add(f"{helpers[name]}.{name}" if name in helpers else name)
    return found


def sources() -> list[pathlib.Path]:
    files = [*(REPO / "geoest").rglob("*.py"), *(REPO / "tools").rglob("*.py"), *(REPO / "tests").glob("*.py")]
    return sorted(p for p in files if "__pycache__" not in p.parts)


def broken_import_rules() -> list[str]:
    """One line per import that breaks a rule of IMPORT_RULES: 'file: imports X (why)'."""
    problems = []
    for path in sources():
        importer = module_name(path)
        for imported in sorted(imports_of(path)):
            for prefix, forbidden, why in IMPORT_RULES:
                if not _under(importer, prefix) or any(_under(importer, f) for f in forbidden):
                    continue
                if any(_under(imported, f) for f in forbidden):
                    problems.append(f"{path.relative_to(REPO)}: imports {imported} ({why})")
    return problems


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def target_of(module: str) -> str | None:
    """The BUILD target holding a geoest module, or None for modules outside geoest."""
    parts = module.split(".")
    if parts[0] == "tests" and len(parts) > 1:
        return "test_helpers"
    if parts[:2] == ["tools", "benchmarks"] and len(parts) == 3:
        return f"bench_{parts[2]}"
    if parts[0] != "geoest":
        return None
    if len(parts) == 1 or parts[1] == "errors":
        return "geoest"
    if parts[1] == "cli":
        return "cli"
    if parts[1] in PACKAGES:
        return "demo_main" if module == "geoest.demo.__main__" else parts[1]
    return parts[1] if parts[1] in MAINS else "geoest"


def _deps(paths, own: str) -> list[str]:
    targets = {target_of(m) for p in paths for m in imports_of(p)}
    targets.discard(None)
    targets.discard(own)
    order = ["test_helpers", "geoest", *PACKAGES, "cli", *MAINS]
    return [f":{t}" for t in sorted(targets, key=lambda t: (order.index(t) if t in order else len(order), t))]


def _rule(kind: str, name: str, srcs: list[str], deps: list[str], **extra) -> str:
    lines = [f"{kind}(", f'    name = "{name}",']
    if "size" in extra:
        lines.append(f'    size = "{extra["size"]}",')
    if "testonly" in extra:
        lines.append("    testonly = True,")
    if len(srcs) == 1:
        lines.append(f'    srcs = ["{srcs[0]}"],')
    else:
        lines += ["    srcs = [", *(f'        "{s}",' for s in srcs), "    ],"]
    if kind != "py_library":
        lines.append(f'    main = "{srcs[0]}",')
    if extra.get("gin"):
        lines.append('    data = glob(["gin/**/*.gin"]),')
    lines.append(f"    deps = [{', '.join(repr(d).replace(chr(39), chr(34)) for d in deps)}],")
    lines.append(")")
    return "\n".join(lines)


def render() -> str:
    """The BUILD file for the tree as it is."""
    rel = lambda p: str(p.relative_to(REPO))  # noqa: E731
    geoest = REPO / "geoest"
    rules = []
    top = sorted(p for p in geoest.glob("*.py") if p.stem not in (*MAINS, "cli"))
    rules.append(_rule("py_library", "geoest", [rel(p) for p in top], _deps(top, "geoest")))
    for package in PACKAGES:
        files = sorted(p for p in (geoest / package).rglob("*.py")
                       if "__pycache__" not in p.parts and p.name != "__main__.py")
        rules.append(_rule("py_library", package, [rel(p) for p in files], _deps(files, package),
                           gin=package in ("training", "demo")))
    cli = geoest / "cli.py"
    rules.append(_rule("py_library", "cli", [rel(cli)], _deps([cli], "cli")))
    for main in MAINS:
        path = geoest / f"{main}.py"
        rules.append(_rule("py_binary", main, [rel(path)], _deps([path], main), gin=True))
    demo_main = geoest / "demo" / "__main__.py"
    rules.append(_rule("py_binary", "demo_main", [rel(demo_main)], _deps([demo_main], "demo_main"), gin=True))
    for path in sorted((REPO / "tools").rglob("*.py")):
        # a clone's wrapper of a main (tools/draw_cells.py runs geoest.draw_cells) is named after its folder
        name = ("bench_" if path.parent == BENCHMARKS else "tools_" if path.stem in MAINS else "") + path.stem
        runs = path.parent != BENCHMARKS or '__name__ == "__main__"' in path.read_text(encoding="utf-8")
        rules.append(_rule("py_binary" if runs else "py_library", name, [rel(path)], _deps([path], name)))
    helpers = sorted(p for p in (REPO / "tests").glob("*.py") if not p.name.startswith("test_"))
    rules.append(_rule("py_library", "test_helpers", [rel(p) for p in helpers],
                       _deps(helpers, "test_helpers"), testonly=True))
    for path in sorted((REPO / "tests").glob("test_*.py")):
        slow = "pytest.mark.slow" in path.read_text(encoding="utf-8")
        deps = _deps([path], path.stem)
        if ":test_helpers" not in deps:
            deps.insert(0, ":test_helpers")   # conftest.py
        rules.append(_rule("py_test", path.stem, [rel(path)], deps,
                           size="large" if slow else "medium", gin=True))
    header = ("# Bazel targets for geoest, written by tools/update_build.py from the real imports;\n"
              "# tests/test_build_file.py checks that this file is up to date.\n"
              'load("@rules_python//python:defs.bzl", "py_binary", "py_library", "py_test")\n\n'
              'package(default_visibility = ["//visibility:public"])\n')
    return header + "\n" + "\n\n".join(rules) + "\n"


def main(argv) -> int:
    problems = broken_import_rules()
    for line in problems:
        print(f"import rule broken: {line}", file=sys.stderr)
    build = REPO / "BUILD"
    if "--check" in argv[1:]:
        stale = build.read_text(encoding="utf-8") != render()
        if stale:
            print("BUILD is stale: run python tools/update_build.py", file=sys.stderr)
        return 1 if (stale or problems) else 0
    build.write_text(render(), encoding="utf-8")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
