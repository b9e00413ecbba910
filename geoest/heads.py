"""A geo model's outputs by name, for the Keras models and for the TF-free inference code alike:
one head per partitioning (named after it), the MTN's scene head (§3.3), and f* (`HIERARCHY`,
computed from the heads, §3.4). Imports no Keras: it reads a model's outputs, it builds none."""
SCENE_HEAD = "scene"        # the MTN's scene head (not a partitioning)


def output_sizes(model) -> dict[str, int]:
    """{output name: number of classes} of a Keras model (dict outputs keep their keys)."""
    outputs = model.output
    if not isinstance(outputs, dict):
        outputs = dict(zip(model.output_names, model.outputs))
    return {name: int(tensor.shape[-1]) for name, tensor in outputs.items()}
