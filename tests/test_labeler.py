"""§3.2 scene labelling with a stand-in classifier: Im2GPS meta rows, resume, bad images."""
import numpy as np
import pytest

from geoest.data.meta_csv import read_meta_csv
from geoest.errors import InputError
from geoest.scene import columns, labeler
from geoest.scene.places365 import load_scene_hierarchy
from scene_helpers import (read_rows, save_stand_in_model, write_meta, write_photos,
                           write_places365_files)

GOOD = ["a/1.jpg", "a/2.jpg", "b/3.png", "4.jpg", "5.jpg", "6.jpg", "7.jpg"]
IDS = GOOD[:3] + ["corrupt.jpg", "missing.jpg"] + GOOD[3:]


@pytest.fixture
def setup(tmp_path):
    hierarchy = load_scene_hierarchy(*write_places365_files(tmp_path / "places365"))
    images = tmp_path / "images"
    write_photos(images, GOOD)
    (images / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    meta_csv = tmp_path / "meta.csv"
    write_meta(meta_csv, IDS)
    model = save_stand_in_model(tmp_path / "scene.keras", hierarchy.num_categories)
    return hierarchy, images, meta_csv, model


def label(setup, output_csv, **kwargs):
    hierarchy, images, meta_csv, model = setup
    kwargs.setdefault("batch_size", 3)
    rows = read_meta_csv(kwargs.pop("meta_csv", meta_csv), scene=False)   # as tools/label_scenes.py reads
    return labeler.label_images(model, hierarchy, images, rows, output_csv, preprocess="tf", **kwargs)


def test_writes_im2gps_meta_rows_and_reports_unreadable_images(setup, tmp_path):
    hierarchy, images, meta_csv, model = setup
    summary = label(setup, tmp_path / "out.csv", all_probs=True)
    assert (summary.labeled, summary.resumed) == (len(GOOD), 0)
    assert sorted(i for i, _ in summary.failed) == ["corrupt.jpg", "missing.jpg"]
    assert sorted(r[0] for r in read_rows(summary.errors_csv)[1:]) == ["corrupt.jpg",
                                                                        "missing.jpg"]
    rows = read_rows(summary.output_csv)
    assert rows[0] == list(columns.META_COLUMNS) + [f"prob365_{i}" for i in range(5)]
    assert [r[0] for r in rows[1:]] == GOOD  # meta order, readable images only
    meta_rows = {r[0]: r for r in read_rows(meta_csv)[1:]}
    assert all(r[1:4] == meta_rows[r[0]][1:4] for r in rows[1:])  # AUTHOR, LAT, LON kept

    values = np.array([r[4:] for r in rows[1:]], dtype=np.float64)
    s3, s16, s365 = values[:, 0], values[:, 1], values[:, 2]
    probs3, probs365 = values[:, 3:6], values[:, 6:]
    np.testing.assert_allclose(probs365.sum(axis=1), 1.0, atol=1e-4)
    np.testing.assert_allclose(probs3, hierarchy.aggregate(probs365, "S3"), atol=1e-5)
    np.testing.assert_array_equal(s3, probs3.argmax(axis=1))
    np.testing.assert_array_equal(s16, hierarchy.aggregate(probs365, "S16").argmax(axis=1))
    np.testing.assert_array_equal(s365, probs365.argmax(axis=1))
    # The probabilities are the model's on each decoded image, whatever the batch.
    expected = labeler.classify(model, np.stack([labeler.load_image(images / i, 32)
                                                 for i in GOOD]), "tf")
    np.testing.assert_allclose(probs365, expected, atol=1e-5)
    assert len(set(s365)) > 1  # the stand-in tells images apart


def test_resumes_without_repeating_rows(setup, tmp_path):
    hierarchy, images, meta_csv, model = setup
    first = tmp_path / "first.csv"
    first.write_text("".join(meta_csv.read_text().splitlines(keepends=True)[:5]))  # 4 rows
    output = tmp_path / "out.csv"
    assert label(setup, output, meta_csv=first).labeled == 3
    # An interruption cuts the last row short; the resumed run drops and redoes it.
    text = output.read_text()
    output.write_text(text[:-7])
    summary = label(setup, output)
    assert (summary.resumed, summary.labeled) == (3, len(GOOD) - 2)
    assert [i for i, _ in summary.failed] == ["missing.jpg"]  # corrupt.jpg listed before
    fresh = read_rows(label(setup, tmp_path / "fresh.csv").output_csv)
    resumed = read_rows(output)
    assert [r[0] for r in resumed] == [r[0] for r in fresh]
    np.testing.assert_allclose(np.array([r[2:] for r in resumed[1:]], float),
                               np.array([r[2:] for r in fresh[1:]], float), atol=1e-5)
    assert label(setup, output).labeled == 0


def test_resuming_with_another_classifier_is_refused(setup, tmp_path):
    """Rows of two classifiers are never mixed: a resume with other weights or another input
    convention stops, naming what changed; --overwrite starts afresh."""
    hierarchy, images, meta_csv, model = setup
    output = tmp_path / "out.csv"
    first = tmp_path / "first.csv"
    first.write_text("".join(meta_csv.read_text().splitlines(keepends=True)[:3]))  # 2 rows
    assert label(setup, output, meta_csv=first).labeled == 2
    before = output.read_bytes()
    other = save_stand_in_model(tmp_path / "other.keras", hierarchy.num_categories, seed=1)
    with pytest.raises(InputError, match=r"out.csv was written by label_scenes from other inputs "
                                         r"\(changed: scene model weights; .*pass --overwrite"):
        label((hierarchy, images, meta_csv, other), output)
    with pytest.raises(InputError, match=r"changed: preprocess"):
        labeler.label_images(model, hierarchy, images, read_meta_csv(meta_csv), output, preprocess="caffe")
    assert output.read_bytes() == before                      # nothing appended
    summary = label((hierarchy, images, meta_csv, other), output, overwrite=True)
    assert (summary.resumed, summary.labeled) == (0, len(GOOD))
    fresh = read_rows(label((hierarchy, images, meta_csv, other), tmp_path / "fresh.csv").output_csv)
    assert read_rows(output) == fresh                         # all rows the other model's
    assert label((hierarchy, images, meta_csv, other), output).labeled == 0   # and now it resumes


def test_resuming_with_other_columns_is_an_error(setup, tmp_path):
    label(setup, tmp_path / "out.csv")
    with pytest.raises(InputError, match="other columns"):
        label(setup, tmp_path / "out.csv", all_probs=True)


def test_bad_meta_names_the_line(setup, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("IMG_ID,LAT,LON\na.jpg,10,20\nb.jpg,91,20\n")
    with pytest.raises(InputError, match=r"bad.csv: row 2 \(line 3, IMG_ID 'b.jpg'\): LAT is 91.0"):
        label(setup, tmp_path / "out.csv", meta_csv=bad)
    bad.write_text("IMG_ID,LAT\na.jpg,10\n")
    with pytest.raises(InputError, match=r"no column 'LON'"):
        label(setup, tmp_path / "out.csv", meta_csv=bad)
    bad.write_text("IMG_ID,LAT,LON\na.jpg,10,20\na.jpg,11,20\n")
    with pytest.raises(InputError, match="line 3.*appears more than once"):
        label(setup, tmp_path / "out.csv", meta_csv=bad)
    assert not (tmp_path / "out.csv").exists()


def test_model_without_softmax_is_rejected(tmp_path):
    model = save_stand_in_model(tmp_path / "logits.keras", 5, softmax=False)
    images = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3))
    with pytest.raises(InputError, match="not probabilities"):
        labeler.classify(model, images, "tf")


def test_load_scene_classifier_checks_the_file(tmp_path):
    save_stand_in_model(tmp_path / "five.keras", 5)
    model = labeler.load_scene_classifier(tmp_path / "five.keras", num_categories=5)
    assert labeler.model_image_size(model) == 32
    with pytest.raises(InputError, match="expected one output of 365"):
        labeler.load_scene_classifier(tmp_path / "five.keras")
    with pytest.raises(InputError, match="no such scene classifier"):
        labeler.load_scene_classifier(tmp_path / "absent.keras")
    (tmp_path / "junk.keras").write_bytes(b"junk")
    with pytest.raises(InputError, match="cannot load"):
        labeler.load_scene_classifier(tmp_path / "junk.keras", num_categories=5)
