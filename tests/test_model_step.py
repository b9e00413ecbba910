"""tools/benchmarks/model_step.py: runs at a tiny size on CPU, and needs nothing but Keras and
geoest.models (so it runs on a GPU machine without TensorFlow)."""
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
            elif isinstance(child, ast.ImportFrom):
                found.append((child.module, name))
            visit(child, name)

    visit(ast.parse(path.read_text(encoding="utf-8")), None)
    return found


def test_model_step_imports_only_keras_and_geoest_models():
    allowed = {"keras", "numpy", "absl", "gin", "geoest", "os", "sys", "json", "time", "statistics", "platform"}
    for module, function in _imports(SCRIPT):
        root = module.split(".")[0]
        if root in BACKEND_PACKAGES:
            assert function == "device_name", (module, function)
        else:
            assert root in allowed, module
            assert root != "geoest" or module.split(".")[1] in ("models", "errors"), module
    for path in sorted((REPO / "geoest" / "models").glob("*.py")):
        for module, _ in _imports(path):
            assert module.split(".")[0] in {"keras", "numpy", "gin", "os", "collections", "geoest"}, (path, module)
            assert not module.startswith("geoest") or module.split(".")[1] in ("models", "errors"), (path, module)


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
