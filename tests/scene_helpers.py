"""Tiny real inputs for the scene tests: a Places365-format hierarchy, photos, a stand-in model."""
import csv
import pathlib

import numpy as np
from PIL import Image

# Five categories in the official file formats. /b/barn is in two level-1 groups (natural and
# man-made) and two level-2 groups, as in the real hierarchy (§3.2).
SYNTHETIC_CATEGORIES = ["/a/alley", "/b/barn", "/b/bedroom", "/c/coast", "/k/kitchen"]
SYNTHETIC_GROUPS = {  # category: (level-1 memberships, level-2 memberships)
    "/a/alley": ((0, 0, 1), (0, 0, 1, 0)),
    "/b/barn": ((0, 1, 1), (0, 1, 0, 1)),
    "/b/bedroom": ((1, 0, 0), (1, 0, 0, 0)),
    "/c/coast": ((0, 1, 0), (0, 1, 0, 0)),
    "/k/kitchen": ((1, 0, 0), (1, 0, 0, 0)),
}
SYNTHETIC_S16 = ["home or hotel", "water, ice, snow", "commercial buildings", "farms"]


def write_places365_files(directory, rows=None, categories=None):
    """Writes categories_places365.txt and scene_hierarchy_places365.csv as officially exported.

    Args:
      rows: hierarchy rows as (name, level1, level2) in file order; default SYNTHETIC_GROUPS.
      categories: the category list; default SYNTHETIC_CATEGORIES.
    Returns:
      (hierarchy_csv, categories_txt) paths.
    """
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    categories = SYNTHETIC_CATEGORIES if categories is None else categories
    if rows is None:
        rows = [(name, *SYNTHETIC_GROUPS[name]) for name in SYNTHETIC_CATEGORIES]
    categories_txt = directory / "categories_places365.txt"
    categories_txt.write_text("\n".join(f"{c} {i}" for i, c in enumerate(categories)))
    hierarchy_csv = directory / "scene_hierarchy_places365.csv"
    with open(hierarchy_csv, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\r\n")
        writer.writerow(["", "Level 1", "", "", "Level 2, INDOOR:", "Level 2, OUTDOOR NATURAL:",
                         "Level 2, OUTDOOR MAN-MADE:", ""])
        writer.writerow(["category", "indoor", "outdoor, natural", "outdoor, man-made"]
                        + SYNTHETIC_S16)
        for name, level1, level2 in rows:
            writer.writerow([f"'{name}'", *level1, *level2])
    return hierarchy_csv, categories_txt


def write_photos(images_dir, img_ids, size=(48, 40), seed=0):
    """Writes one small image per id: its own colour plus noise (format from the extension)."""
    rng = np.random.default_rng(seed)
    for img_id in img_ids:
        path = pathlib.Path(images_dir) / img_id
        path.parent.mkdir(parents=True, exist_ok=True)
        colour = rng.integers(0, 256, size=3)
        noise = rng.integers(-40, 40, size=(size[1], size[0], 3))
        Image.fromarray(np.clip(colour + noise, 0, 255).astype(np.uint8)).save(path)


def write_meta(path, img_ids, seed=0):
    """Writes an IMG_ID,AUTHOR,LAT,LON meta CSV with random coordinates; returns them."""
    rng = np.random.default_rng(seed)
    lat, lon = rng.uniform(-80, 80, len(img_ids)), rng.uniform(-179, 179, len(img_ids))
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["IMG_ID", "AUTHOR", "LAT", "LON"])
        for row in zip(img_ids, [f"author{i}" for i in range(len(img_ids))], lat, lon):
            writer.writerow(row)
    return lat, lon


def save_stand_in_model(path, num_categories, image_size=32, softmax=True, seed=0):
    """A tiny Keras classifier in place of the ResNet-152: [B, S, S, 3] -> num_categories."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((image_size, image_size, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, activation="tanh")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(num_categories, activation="softmax" if softmax else None,
                                 kernel_initializer=keras.initializers.RandomNormal(stddev=3.0))(x)
    model = keras.Model(inputs, outputs)
    model.save(path)
    return model


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))
