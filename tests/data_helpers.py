"""Small real inputs for the data tests: JPEGs drawn with numpy, records, bad files."""
import io
import pathlib

import numpy as np
from PIL import Image


def jpeg_bytes(height: int, width: int, seed: int = 0, quality: int = 90) -> bytes:
    """A smooth random colour image as JPEG bytes."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
    image = Image.fromarray(small).resize((width, height), Image.Resampling.BILINEAR)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality)
    return out.getvalue()


def coordinate_image(height: int, width: int) -> np.ndarray:
    """uint8 [height, width, 3] whose red channel encodes x and green encodes y (0..255)."""
    x = np.linspace(0, 255, width)
    y = np.linspace(0, 255, height)
    image = np.zeros((height, width, 3), np.uint8)
    image[..., 0] = np.round(x)[np.newaxis, :]
    image[..., 1] = np.round(y)[:, np.newaxis]
    image[..., 2] = 128
    return image


def encode_jpeg(array: np.ndarray, quality: int = 100) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="JPEG", quality=quality, subsampling=0)
    return out.getvalue()


def png_bytes(height: int = 20, width: int = 30) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.full((height, width, 3), 200, np.uint8)).save(out, format="PNG")
    return out.getvalue()


def bad_files() -> dict:
    """{name: bytes} of photos a build or an epoch must survive."""
    good = jpeg_bytes(48, 64, seed=99)
    return {
        "empty.jpg": b"",
        "png.jpg": png_bytes(),
        "truncated.jpg": good[: len(good) // 2],
    }


def corrupt_jpeg() -> bytes:
    """Start and end markers of a JPEG around garbage: only decoding finds it broken."""
    rng = np.random.default_rng(5)
    return b"\xff\xd8\xff" + rng.integers(0, 256, 500, dtype=np.uint8).tobytes() + b"\xff\xd9"


def write_images(folder: pathlib.Path, files: dict) -> None:
    for name, data in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def random_points(n: int, seed: int = 0):
    """Clustered coordinates in degrees: lat [n], lon [n]."""
    rng = np.random.default_rng(seed)
    centres = np.array([[48.85, 2.35], [40.71, -74.0], [35.68, 139.69], [-33.87, 151.2]])
    which = rng.integers(0, len(centres), n)
    lat = np.clip(centres[which, 0] + rng.normal(0, 3, n), -89, 89)
    lon = np.clip(centres[which, 1] + rng.normal(0, 3, n), -179, 179)
    return lat, lon
