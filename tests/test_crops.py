"""geoest.data.crops: the §4 crop window and training image, the §3.4 three crops."""
import numpy as np
import pytest
import tensorflow as tf

from data_helpers import coordinate_image, encode_jpeg
from geoest.data.crops import sample_crop_window, three_crops, train_image

SIZE = 32


@pytest.mark.parametrize("height, width", [(64, 128), (128, 64), (80, 80), (48, 100)])
def test_three_crops_lie_at_start_middle_and_end_of_the_longer_side(height, width):
    crops = three_crops(tf.constant(coordinate_image(height, width)), SIZE).numpy()
    assert crops.dtype == np.uint8 and crops.shape == (3, SIZE, SIZE, 3)
    scale = SIZE / min(height, width)
    new_h, new_w = round(height * scale), round(width * scale)
    slack = max(new_h, new_w) - SIZE
    for crop, offset in zip(crops, (0, slack // 2, slack)):
        # Pixel values encode source coordinates; map the crop's centre pixel back.
        red, green = crop[SIZE // 2, SIZE // 2, :2].astype(np.float64)
        x_resized = (red / 255 * (width - 1) + 0.5) / (width / new_w) - 0.5
        y_resized = (green / 255 * (height - 1) + 0.5) / (height / new_h) - 0.5
        offset_y, offset_x = (offset, 0) if new_h > new_w else (0, offset)
        assert x_resized == pytest.approx(offset_x + SIZE // 2, abs=1.0)
        assert y_resized == pytest.approx(offset_y + SIZE // 2, abs=1.0)
    if height == width:
        np.testing.assert_array_equal(crops[0], crops[2])


@pytest.mark.parametrize("height, width", [(320, 427), (427, 320), (300, 300), (200, 260)])
def test_crop_windows_cover_70_to_100_percent_at_allowed_aspect(height, width):
    areas, aspects = [], []
    for k in range(200):
        offset_y, offset_x, h, w = sample_crop_window(
            tf.constant([height, width, 3]), tf.constant([k, 7])).numpy()
        assert 0 <= offset_y and offset_y + h <= height and 0 <= offset_x and offset_x + w <= width
        areas.append(h * w / (height * width))
        aspects.append(w / h)
    assert min(areas) >= 0.7 - 1e-6 and max(areas) <= 1.0
    # Whole pixels: allow one pixel of rounding on the aspect bounds.
    assert min(aspects) >= 3 / 4 - 1.5 / min(height, width)
    assert max(aspects) <= 4 / 3 + 1.5 / min(height, width)
    assert max(areas) - min(areas) > 0.15            # it does vary


@pytest.mark.parametrize("height, width", [(160, 200), (200, 160)])
def test_training_image_is_a_flipped_or_plain_crop_in_range(height, width):
    encoded = tf.constant(encode_jpeg(coordinate_image(height, width)))
    flips = []
    for k in range(40):
        image, decoded = train_image(encoded, tf.constant([k, 1], tf.int64), SIZE)
        image = image.numpy()
        assert bool(decoded) and image.dtype == np.uint8 and image.shape == (SIZE, SIZE, 3)
        xs = image[SIZE // 2, [0, -1], 0].astype(np.float64) / 255 * (width - 1)
        ys = image[[0, -1], SIZE // 2, 1].astype(np.float64) / 255 * (height - 1)
        flips.append(xs[0] > xs[1])
        # Output pixel centres 0 and SIZE-1 span (SIZE-1)/SIZE of the crop.
        crop_w = abs(xs[1] - xs[0]) * SIZE / (SIZE - 1)
        crop_h = (ys[1] - ys[0]) * SIZE / (SIZE - 1)
        area = crop_w * crop_h / (height * width)
        assert 0.7 - 0.04 <= area <= 1.0 + 0.03
        assert 3 / 4 - 0.05 <= crop_w / crop_h <= 4 / 3 + 0.05
    assert any(flips) and not all(flips)
