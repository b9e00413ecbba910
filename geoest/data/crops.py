"""Photo -> model input: the §4 training image (a random crop window covering 70-100 % of the area,
resized, flipped at random) and the §3.4 three test crops. Images are uint8 RGB in [0, 255]."""
import tensorflow as tf

from geoest.data.photo_checks import decode_jpeg_strict

# §4 augmentation: a crop covering 70-100 % of the area, aspect ratio 3/4 to 4/3.
CROP_AREA_RANGE = (0.7, 1.0)
CROP_ASPECT_RANGE = (3 / 4, 4 / 3)


def sample_crop_window(image_shape, seed):
    """§4: a random crop covering 70-100 % of the area with aspect ratio (w/h) 3/4 to 4/3.

    Args:
      image_shape: int32 [3] (height, width, channels).
      seed: int [2], for the stateless sampler.
    Returns:
      int32 [4] crop window (offset_y, offset_x, height, width). When no such crop fits (a
      very elongated photo) the whole image.
    """
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        image_shape, bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]), seed=seed,
        min_object_covered=CROP_AREA_RANGE[0], aspect_ratio_range=CROP_ASPECT_RANGE,
        area_range=CROP_AREA_RANGE, max_attempts=100, use_image_if_no_bounding_boxes=True)
    return tf.stack([begin[0], begin[1], size[0], size[1]])


def _to_uint8(resized):
    """A bilinear resize of uint8 pixels (float32, within [0, 255]) rounded back to uint8."""
    return tf.cast(resized + 0.5, tf.uint8)



def train_image(encoded, seed, image_size: int = 224, on_undecodable=None):
    """§4: decode only a random crop window, resize to image_size^2, flip at random.

    Args:
      encoded: tf.string scalar, a JPEG.
      seed: int [2]; the crop and the flip draw from seeds derived from it.
      on_undecodable: called for a photo whose JPEG data does not decode (`decode_jpeg_strict`).
    Returns:
      (uint8 [image_size, image_size, 3], decoded bool scalar): filter out the photos not decoded.
    """
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 2)
    # The whole JPEG is decoded strictly, then cropped: decoding only the window would stop at its
    # last row, and a lenient decoder feeds corrupt data as pixels.
    image, decoded = decode_jpeg_strict(encoded, on_undecodable)
    window = sample_crop_window(tf.shape(image), seeds[0])
    image = tf.slice(image, tf.stack([window[0], window[1], 0]), tf.stack([window[2], window[3], 3]))
    image = _to_uint8(tf.image.resize(image, [image_size, image_size]))
    # Flipping commutes with the (symmetric) bilinear resize; the smaller uint8 image is cheapest.
    return tf.image.stateless_random_flip_left_right(image, seeds[1]), decoded


def three_crops(image, image_size: int = 224):
    """§3.4: resize the shorter side to image_size, then three square crops along the longer
    side (start, middle, end). A square image gives three identical crops.

    Args:
      image: uint8 [height, width, 3].
    Returns:
      uint8 [3, image_size, image_size, 3].
    """
    shape = tf.shape(image)
    height, width = tf.cast(shape[0], tf.float64), tf.cast(shape[1], tf.float64)
    scale = image_size / tf.minimum(height, width)
    new_h = tf.maximum(image_size, tf.cast(tf.round(height * scale), tf.int32))
    new_w = tf.maximum(image_size, tf.cast(tf.round(width * scale), tf.int32))
    resized = _to_uint8(tf.image.resize(image, tf.stack([new_h, new_w])))   # one resize for the three crops
    portrait = new_h > new_w
    slack = tf.maximum(new_h, new_w) - image_size
    crops = []
    for offset in (0, slack // 2, slack):
        offset_y = tf.where(portrait, offset, 0)
        offset_x = tf.where(portrait, 0, offset)
        crops.append(tf.slice(resized, tf.stack([offset_y, offset_x, 0]),
                              [image_size, image_size, 3]))
    return tf.stack(crops)
