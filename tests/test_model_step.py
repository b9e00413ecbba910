"""tools/benchmarks/model_step.py: runs at a tiny size on CPU, and needs nothing but Keras and
geoest.models and geoest.cli (so it runs on a GPU machine without TensorFlow)."""
import ast
import json
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = REPO / "tools" / "benchmarks" / "model_step.py"
BACKEND_PACKAGES = {"jax", "torch", "tensorflow"}   # named only to find the device's name


def _imports(path):
    """(module, enclosing function name or None) for every import in a file."""
    found = []

    def visit(node, function):
        for child in ast.iter_child_nodes(node):
            name = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else function
            if isinstance(child, ast.Import):
                found.extend((alias.name, name) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module == "geoest":   # from geoest import cli
                found.extend((f"geoest.{alias.name}", name) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                found.append((child.module, name))
            visit(child, name)

    visit(ast.parse(path.read_text(encoding="utf-8")), None)
    return found


def _file_of(module):
    path = REPO.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def test_model_step_loads_no_tensorflow_outside_the_device_name():
    """What model_step.py loads at import (following geoest's module-level imports, parent packages
    included) is Keras, gin, numpy, absl and the standard library; TensorFlow, JAX or PyTorch only
    inside `device_name`, for the backend in use."""
    for module, function in _imports(SCRIPT):
        if module.split(".")[0] in BACKEND_PACKAGES:
            assert function == "device_name", (module, function)
        elif module.startswith("geoest"):
            assert module.split(".")[1] in ("models", "errors", "cli"), module
    third_party = {"keras", "numpy", "gin", "absl"}
    todo, seen = [m for m, function in _imports(SCRIPT) if m.startswith("geoest.")], set()
    while todo:
        module = todo.pop()
        parts = module.split(".")
        for k in range(1, len(parts) + 1):      # importing a.b.c runs a/__init__, a/b/__init__ first
            name = ".".join(parts[:k])
            if name in seen or not _file_of(name).is_file():
                continue
            seen.add(name)
            for imported, function in _imports(_file_of(name)):
                if function is not None:         # imported when a function runs, not at import
                    continue
                if imported.startswith("geoest"):
                    todo.append(imported)
                else:
                    root = imported.split(".")[0]
                    assert root in third_party or root in sys.stdlib_module_names, (name, imported)
    assert "geoest.models" in seen and "geoest.models.inference_model" in seen


def test_model_step_runs_at_a_tiny_size(tmp_path):
    out = tmp_path / "step.json"
    result = subprocess.run([sys.executable, str(SCRIPT), "--backbone=tiny", "--image_size=32", "--batch_size=4",
                             "--heads=5,9,17", "--policy=mixed_bfloat16", "--steps=2", "--runs=2", "--warmup=1",
                             f"--json={out}"], capture_output=True, text=True, timeout=600, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert figures["backend"] == "tensorflow" and figures["device"].startswith("cpu")
    assert figures["cpu_count"] >= 1 and figures["policy"] == "mixed_bfloat16" and figures["heads"] == [5, 9, 17]
    for key in ("train_images_per_s", "inference_photos_per_s", "inference_logits_out_photos_per_s"):
        assert figures[key] > 0
    assert "photos/s" in result.stdout and "images/s" in result.stdout
