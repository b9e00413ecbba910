"""Test photos seen in training: a model's recorded training files against a test set.

A model dir records the training files of its run in operative_config.gin
(`tfrecord_inputs.train_files`). `training_overlap` counts the test IMG_IDs among those files'
records; an evaluation of photos the model was trained on is refused unless asked for.
"""
import ast
import os
import pathlib
import re

ID_CHECK_BYTES = 4 << 30
_TRAIN_FILES = re.compile(r"^tfrecord_inputs\.train_files\s*=\s*(.*)$")


def training_files(model_dir) -> list:
    """The TFRecord glob patterns a model dir's run trained on (its operative_config.gin), or []."""
    path = pathlib.Path(model_dir) / "operative_config.gin"
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    for k, line in enumerate(lines):
        match = _TRAIN_FILES.match(line)
        if match:
            text = match.group(1).rstrip("\\").strip()   # a long value: a backslash, then
            for more in lines[k + 1:]:           # indented lines (as gin writes it)
                if not more.startswith(" "):
                    break
                text += more.strip()
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                return []
            return [value] if isinstance(value, str) else [str(v) for v in value]
    return []


def record_ids(files) -> set:
    """The IMG_IDs of TFRecord files (each record's id feature; photos are not decoded)."""
    import tensorflow as tf

    from geoest.data import records

    ids = set()
    if not files:
        return ids
    spec = {records.IMAGE_ID: tf.io.FixedLenFeature([], tf.string, default_value="")}
    data = tf.data.TFRecordDataset(sorted(files)).ignore_errors().batch(4096)
    for batch in data.map(lambda s: tf.io.parse_example(s, spec)[records.IMAGE_ID]).as_numpy_iterator():
        ids.update(batch.tolist())
    return ids


def training_overlap(model_dir, test_files, test_ids: set) -> int:
    """How many of `test_ids` (bytes IMG_IDs of `test_files`) are in the training records of `model_dir`.

    Every training record's IMG_ID is compared when the training files hold at most
    `ID_CHECK_BYTES`; beyond that (MP-16: ~0.5 TB), only test files that are training files are.
    Relative patterns are read from the working directory, as the training run read them.
    """
    import tensorflow as tf

    files = sorted({f for pattern in training_files(model_dir) for f in tf.io.gfile.glob(pattern)})
    if not files or not test_ids:
        return 0
    if sum(os.path.getsize(f) for f in files) > ID_CHECK_BYTES:
        tested = {os.path.realpath(f) for f in test_files}
        files = [f for f in files if os.path.realpath(f) in tested]
    return len(test_ids & record_ids(files))
