"""Telling a readable photo from one that is not, as cheaply as possible: an image file by its first
bytes and header (`photo_problem`, the smallest side answered), a record's JPEG by its start and end
markers (`jpeg_looks_complete`), and corrupt data inside a complete-looking JPEG by strict decoding
(`decode_jpeg_strict`)."""
import numpy as np
import simplejpeg
import tensorflow as tf
from PIL import Image

from geoest.data.skip_log import NOT_JPEG, UNOPENABLE, small_reason

_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"BM")   # JPEG, PNG, GIF, BMP: what image_dataset reads


def jpeg_looks_complete(encoded):
    """A vectorised check of JPEG start (FF D8 FF) and end (FF D9) markers.

    Catches zero-byte files, PNGs and truncated JPEGs without decoding. Corrupt data inside a
    complete-looking JPEG is left to the strict decoder (`decode_jpeg_strict`).

    Returns:
      (is_jpeg, has_end): bool tensors of `encoded`'s shape.
    """
    length = tf.strings.length(encoded)
    is_jpeg = tf.strings.substr(encoded, tf.zeros_like(length), tf.minimum(length, 3)) \
        == b"\xff\xd8\xff"
    end = tf.strings.substr(encoded, tf.maximum(length - 2, 0), tf.minimum(length, 2))
    return is_jpeg, end == b"\xff\xd9"


def default_min_side(image_size: int) -> int:
    """The smallest shorter side (px) a photo is answered at: a quarter of the model's crop side
    (56 px for §4's 224 px crops). A smaller one would be enlarged more than 4x into its crops: a
    thumbnail or an icon, answered as if it were a photo."""
    return max(1, image_size // 4)


def photo_problem(path, min_side: int = 0) -> str | None:
    """Why an image file is not read: judged by its first bytes and header, nothing decoded, and a
    file that is not a JPEG, PNG, GIF or BMP never read whole.

    Returns:
      UNOPENABLE, NOT_JPEG, small_reason(min_side) for a shorter side below `min_side` px (0: any
      size), or None (a header the check cannot parse is left to the decoder, which names it).
    """
    try:
        with open(path, "rb") as f:
            if not f.read(4).startswith(_IMAGE_MAGIC):
                return NOT_JPEG
            if not min_side:
                return None
            f.seek(0)
            try:
                with Image.open(f) as image:          # reads the header alone
                    width, height = image.size
            except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
                return None
    except OSError:
        return UNOPENABLE
    return small_reason(min_side) if min(width, height) < min_side else None


def decode_jpeg_strict(encoded, on_undecodable=None):
    """Decodes a JPEG (tf.string scalar) with libjpeg-turbo in strict mode (simplejpeg): data
    libjpeg would only warn about ("Corrupt JPEG data: ...", which `tf.io.decode_jpeg` decodes into
    garbage pixels) counts as undecodable. No error flows through tf.data: a pipeline filters on
    `decoded` (an error dropped by `ignore_errors` can leave an iterator destroyed mid-stream
    waiting forever for its parallel map).

    Args:
      encoded: tf.string scalar.
      on_undecodable: called for each photo that does not decode (the training pipeline counts them).
    Returns:
      (image uint8 [height, width, 3], decoded bool scalar); an undecodable photo gives a black 1x1 image.
    """

    def decode(data):
        try:
            return simplejpeg.decode_jpeg(data.numpy(), colorspace="RGB", strict=True), True
        except ValueError:
            if on_undecodable is not None:
                on_undecodable()
            return np.zeros((1, 1, 3), np.uint8), False

    image, decoded = tf.py_function(decode, [encoded], (tf.uint8, tf.bool))
    image.set_shape([None, None, 3])
    decoded.set_shape([])
    return image, decoded
