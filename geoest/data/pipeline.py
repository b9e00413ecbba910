"""tf.data input pipelines: §4 training augmentation, §3.4 three-crop evaluation.

Stages (decoder, then parser):
  0. each shard on its own: a corrupt or truncated record ends that shard there (its records
     before it are kept) instead of failing a batch; the shard is named in the `SkipLog`.
  1. records -> batches of serialized examples -> `records.parse_example` (vectorised),
     a label per partitioning from latitude/longitude (`Partitioning.assign_tf`, §3.1), the
     scene label, the ISN filter (§4) and a cheap JPEG check; dropped records are counted in
     a `SkipLog` (with the IMG_ID of every unreadable photo).
  2. one photo at a time, in parallel: decode (only the crop window, for training), resize,
     crop.
  3. batch, prefetch.

Every image tensor is uint8 RGB in [0, 255], the input of `geoest.models` (each backbone scales
it to its own convention as its first layer, on the accelerator): a quarter of float32's bytes
per batch, and no per-pixel float work on the host beyond the resize.
"""
import collections
import collections.abc
import concurrent.futures
import logging
import threading

import gin
import numpy as np
import simplejpeg
import tensorflow as tf
from PIL import Image

from geoest.data import records
from geoest.errors import InputError
from geoest.scene.statistics import TAU_S             # §4: ISN training images have p(concept) > 0.3
from geoest.scene.places365 import CONCEPTS     # S3 order (§3.2)
from geoest.scene.places365 import LEVELS as SCENE_LEVELS
from geoest.scene.places365 import scene_label_tf

AUTOTUNE = tf.data.AUTOTUNE

# §4 augmentation: a crop covering 70-100 % of the area, aspect ratio 3/4 to 4/3.
CROP_AREA_RANGE = (0.7, 1.0)
CROP_ASPECT_RANGE = (3 / 4, 4 / 3)
_PARSE_BATCH = 1024           # records parsed and labelled together (vectorised)
_COUNT_CHUNK = 32             # records of one shard counted per call into the SkipLog
_RECORD_FRAMING = 16          # bytes around each TFRecord: length, its CRC, the data's CRC

# Why a record was dropped (SkipLog keys). The first two are unreadable photos.
NOT_JPEG = "not a JPEG (empty, PNG, other)"
TRUNCATED = "truncated JPEG (no end marker)"
NO_CELL = "in no cell of a partitioning"
NO_SCENE = "no scene probabilities"
BELOW_TAU_S = "concept probability <= tau_S"
_REASONS = (NOT_JPEG, TRUNCATED, NO_CELL, NO_SCENE, BELOW_TAU_S)
_UNREADABLE = (NOT_JPEG, TRUNCATED)
UNOPENABLE = "missing or unreadable file"
_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"BM")   # JPEG, PNG, GIF, BMP: what image_dataset reads
DAMAGED_SHARD = "in a damaged shard (corrupt or truncated record)"


class SkipLog:
    """Counts the records a pipeline drops, by reason, and names every unreadable photo.

    Pass one to a pipeline factory and read it while or after iterating:
    `log.counts` {reason: n}; `log.unreadable` [(IMG_ID, reason)]; `log.damaged` {shard:
    (records read before the damage, bytes read)}, checked at the end of each pass over a shard;
    `log.records_read`. Unreadable photos and damaged shards are also logged as warnings.
    Thread-safe (tf.data calls it from several threads).
    """

    def __init__(self):
        self.counts = collections.Counter()
        self.unreadable = []
        self.shard_sizes = {}     # shard path -> bytes, of the shards a pipeline reads
        self.damaged = {}         # shard path -> (records read before the damage, bytes read)
        self.records_read = 0     # records read from shards, over all passes
        self.links_followed = 0   # photos read through a link out of their folder (--follow_links)
        self.bytes_read = 0
        self._passes = {}         # shard path -> [records, bytes] read in the current pass
        self._lock = threading.Lock()

    def add(self, image_id: str, reason: str) -> None:
        """Counts one photo skipped before any pipeline saw it (missing, outside its folder)."""
        with self._lock:
            self.counts[reason] += 1
            self.unreadable.append((image_id, reason))
        logging.warning("skipped image %s: %s", image_id, reason)

    def _count_read(self, path, records, size):
        path = path.numpy().decode("utf-8", "replace")
        with self._lock:
            done = self._passes.setdefault(path, [0, 0])
            if records:
                done[0] += int(records)
                done[1] += int(size)
                self.records_read += int(records)
                self.bytes_read += int(size)
                return np.int32(0)
            expected = self.shard_sizes.get(path)       # an empty chunk: the end of a pass
            if expected is not None and done[1] != expected and path not in self.damaged:
                self.damaged[path] = tuple(done)
                logging.warning("shard %s is damaged: record %d (byte %d of %d) cannot be read; "
                                "the rest of the shard is skipped", path, done[0], done[1], expected)
            self._passes[path] = [0, 0]
        return np.int32(0)

    def count_read_tf(self, path, chunk):
        """Graph op: counts a chunk (string [k]) of records read from shard `path`; an empty chunk
        ends a pass over the shard, which is then checked against its size."""
        size = tf.reduce_sum(tf.cast(tf.strings.length(chunk), tf.int64)) \
            + _RECORD_FRAMING * tf.cast(tf.size(chunk), tf.int64)
        return tf.py_function(self._count_read, [path, tf.size(chunk), size], tf.int32)

    def lost_in_damaged_shards(self) -> int:
        """Records estimated lost past the damage of each damaged shard: its unread bytes over its
        mean record size (over all shards when none of its records could be read); at least one."""
        lost = 0
        for path, (records, size) in self.damaged.items():
            per_record = size / records if records else (self.bytes_read / max(self.records_read, 1))
            unread = self.shard_sizes[path] - size
            lost += max(1, round(unread / per_record)) if per_record else 1
        return lost

    def _record(self, reason_codes, ids):
        with self._lock:
            for code, image_id in zip(reason_codes.numpy(), ids.numpy()):
                reason = _REASONS[code]
                self.counts[reason] += 1
                if reason in _UNREADABLE:
                    image_id = image_id.decode("utf-8", "replace")
                    self.unreadable.append((image_id, reason))
                    logging.warning("skipped image %s: %s", image_id, reason)
        return np.int32(len(reason_codes))

    def record_tf(self, reason_codes, ids):
        """Graph op: records `ids` (string [k]) dropped for `reason_codes` (int32 [k])."""
        return tf.py_function(self._record, [reason_codes, ids], tf.int32)

    def __repr__(self):
        return f"SkipLog({dict(self.counts)})"


class DataPosition:
    """Where a repeated training pipeline is in its data, so that a resumed run continues there.

    The pipeline reads pass after pass over the records; pass k is shuffled with the seed
    (seed, k), so any pass can be rebuilt on its own. A position is (pass, photos of that pass
    consumed), counted in the labelled stream before decoding: a resume rebuilds its pass and
    skips the consumed photos without decoding them (records are read and parsed, no JPEG
    decoded). Its variables (`checkpoint()`) go into the trainer's checkpoint:

      pass_index  int64, the pass of the next photo;
      consumed    int64, photos of that pass consumed before it (labelled stream position);
      seed        int64, the shuffling and augmentation seed (a random one is kept, so that a
                  resumed run shuffles as the first one did).

    Each batch the pipeline yields is logged with the position after its last photo, in the
    order Keras receives them; `mark(step)` moves the variables to the position after the batch
    of that training step (call it just before saving a checkpoint), and `begin(step)` before
    each `fit` (a new iterator reads the variables when it starts). With `deterministic=True`
    the position is exact: a run stopped and resumed any number of times sees every photo of a
    pass once; otherwise parallel reads reorder photos and it is approximate.
    """

    def __init__(self, seed: int = 0):
        self.pass_index = tf.Variable(0, dtype=tf.int64, trainable=False, name="pass_index")
        self.consumed = tf.Variable(0, dtype=tf.int64, trainable=False, name="consumed")
        self.seed = tf.Variable(int(seed), dtype=tf.int64, trainable=False, name="seed")
        self._generation = tf.Variable(0, dtype=tf.int64, trainable=False, name="generation")
        self._batches = collections.defaultdict(list)   # generation -> [(pass, consumed) after each batch]
        self._first_step = 0
        self._undecodable = 0          # photos whose JPEG data did not decode, as the pipeline read them
        self._lock = threading.Lock()

    def checkpoint(self):
        """The trackable the trainer puts into its `tf.train.Checkpoint` (pass, consumed, seed)."""
        return tf.train.Checkpoint(pass_index=self.pass_index, consumed=self.consumed, seed=self.seed)

    def value(self) -> tuple:
        """(pass, photos of that pass consumed) as the variables hold it."""
        return int(self.pass_index.numpy()), int(self.consumed.numpy())

    def begin(self, step: int) -> None:
        """Before a `fit` at training step `step`: the variables say where its data starts."""
        self.mark(step)
        with self._lock:
            self._generation.assign_add(1)
            self._first_step = step

    def at(self, step: int):
        """The position after training step `step` of the current `fit`, or None if unknown."""
        with self._lock:
            log = self._batches.get(int(self._generation.numpy()), [])
            k = step - self._first_step - 1
            return log[k] if 0 <= k < len(log) else None

    def mark(self, step: int) -> None:
        """Moves the variables to the position after training step `step` (when it is known)."""
        position = self.at(step)
        if position is not None:
            self.pass_index.assign(position[0])
            self.consumed.assign(position[1])

    def count_undecodable(self) -> None:
        """Called by the pipeline for each photo whose JPEG data does not decode."""
        with self._lock:
            self._undecodable += 1

    def undecodable(self) -> int:
        """Photos found undecodable so far in this process (counted where the pipeline reads,
        so prefetched photos are counted before they are trained on)."""
        with self._lock:
            return self._undecodable

    def _record(self, generation, passes, indices):
        passes, indices = passes.numpy(), indices.numpy()
        if len(passes):
            last = max(zip(passes.tolist(), indices.tolist()))
            with self._lock:
                self._batches[int(generation.numpy())].append((last[0], last[1] + 1))
        return np.int32(0)

    def record_tf(self, generation, passes, indices):
        """Graph op: logs a batch yielded by iterator `generation` whose photos sit at `indices`
        (int64 [B]) of `passes` (int64 [B])."""
        return tf.py_function(self._record, [generation, passes, indices], tf.int32)

    def start_tf(self):
        """Graph op read when an iterator starts: int64 [4] (generation, pass, consumed, seed)."""
        return tf.stack([self._generation.read_value(), self.pass_index.read_value(),
                         self.consumed.read_value(), self.seed.read_value()])


def _jpeg_looks_complete(encoded):
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


def _matrix(scene_matrices, level: str):
    """`SceneHierarchy.s3_matrix` / `.s16_matrix`, or scene_matrices["S3"] / ["S16"]."""
    if scene_matrices is None:
        return None
    if isinstance(scene_matrices, collections.abc.Mapping):
        return scene_matrices.get(level)
    return getattr(scene_matrices, f"{level.lower()}_matrix", None)


def _check_scene_args(scene_level, concept, tau_s, scene_matrices):
    if scene_level is not None and scene_level not in SCENE_LEVELS:
        raise InputError(f"scene_level {scene_level!r}: expected one of {list(SCENE_LEVELS)}")
    if concept is not None and concept not in CONCEPTS:
        raise InputError(f"concept {concept!r}: expected one of {CONCEPTS}")
    if not 0.0 <= tau_s < 1.0:
        raise InputError(f"tau_s {tau_s}: expected a probability in [0, 1)")


def _scene_labels(features, probs3, scene_matrices):
    """§3.2: int64 [batch, 3], the S3, S16 and S365 label of each record: its stored label (the
    published meta's S*_Label), else the argmax of its probabilities at that level (`scene_label_tf`;
    S16 needs the hierarchy's S16 matrix), else -1."""
    probs365 = features[records.SCENE_PROBS365]
    derived = {"S3": probs3, "S365": probs365}
    s16_matrix = _matrix(scene_matrices, "S16")
    if s16_matrix is not None:
        derived["S16"] = tf.linalg.matmul(probs365, tf.constant(s16_matrix, tf.float32))
    columns = []
    for level in SCENE_LEVELS:
        stored = features[records.SCENE_LABELS[level]]
        if level in derived:
            stored = tf.where(stored >= 0, stored, scene_label_tf(derived[level]))
        columns.append(stored)
    return tf.stack(columns, axis=1)


def _label_stage(serialized, skip_log: SkipLog, partitionings, *, scene_level=None,
                 concept=None, tau_s=TAU_S, scene_matrices=None, drop_unlabelled=True):
    """[batch] serialized examples -> dict of [kept] tensors, with labels; drops are logged.

    Keys: "encoded", "id", "lat", "lon", "probs3", "scene_labels" (int64 [kept, 3], S3 / S16 /
    S365, -1 unknown), one per partitioning name (int64 class), and "scene" (int64, the label at
    scene_level) with a scene_level. Training drops the photos without a label (in no cell, no
    scene label); evaluation (`drop_unlabelled=False`) keeps them with label -1.
    """
    s3_matrix = _matrix(scene_matrices, "S3")
    features = records.parse_example(serialized, s3_matrix=s3_matrix)
    out = {
        "encoded": features[records.IMAGE_ENCODED],
        "id": features[records.IMAGE_ID],
        "lat": features[records.LATITUDE],
        "lon": features[records.LONGITUDE],
        "probs3": features[records.SCENE_PROBS3],
    }
    is_jpeg, has_end = _jpeg_looks_complete(out["encoded"])
    reason = tf.where(is_jpeg, tf.where(has_end, -1, _REASONS.index(TRUNCATED)),
                      _REASONS.index(NOT_JPEG))

    def drop(where, code):
        return tf.where((reason < 0) & where, code, reason)

    for p in partitionings:
        out[p.name] = p.assign_tf(out["lat"], out["lon"])    # §3.1: class of the cell
        if drop_unlabelled:
            reason = drop(out[p.name] < 0, _REASONS.index(NO_CELL))
    out["scene_labels"] = _scene_labels(features, out["probs3"], scene_matrices)
    if scene_level is not None:                 # §3.3 MTN: the scene label at its level
        out["scene"] = out["scene_labels"][:, SCENE_LEVELS.index(scene_level)]
        if drop_unlabelled:
            reason = drop(out["scene"] < 0, _REASONS.index(NO_SCENE))
    if concept is not None:                     # §4: the ISN filter, p(concept) > tau_S
        p_concept = out["probs3"][:, CONCEPTS.index(concept)]
        reason = drop(tf.math.is_nan(p_concept), _REASONS.index(NO_SCENE))
        reason = drop(~(p_concept > tau_s), _REASONS.index(BELOW_TAU_S))
    return _drop_logged(out, reason, skip_log)


def _drop_logged(batch, reason, skip_log):
    """Drops the rows of a dict of [N, ...] tensors whose reason is >= 0, logging their ids."""
    keep = reason < 0
    logged = skip_log.record_tf(tf.boolean_mask(reason, ~keep),
                                tf.boolean_mask(batch["id"], ~keep))
    with tf.control_dependencies([logged]):
        keep = tf.identity(keep)
    return {key: tf.boolean_mask(value, keep) for key, value in batch.items()}


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


def _record_files(file_pattern, shuffle: bool, seed, input_context, skip_log: SkipLog | None = None):
    patterns = [file_pattern] if isinstance(file_pattern, str) else list(file_pattern)
    files = tf.io.gfile.glob(patterns[0]) if len(patterns) == 1 else sum(
        (tf.io.gfile.glob(p) for p in patterns), [])
    if not files:
        raise InputError(f"no TFRecord files match {file_pattern!r}")
    if skip_log is not None:
        skip_log.shard_sizes.update({f: tf.io.gfile.stat(f).length for f in files})
    files = tf.data.Dataset.from_tensor_slices(sorted(files))
    if input_context is not None and input_context.num_input_pipelines > 1:
        files = files.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    if shuffle:
        files = files.shuffle(4096, seed=seed, reshuffle_each_iteration=True)
    return files


def _shard_records(path, skip_log: SkipLog):
    """The serialized records of one shard. A corrupt or truncated record ends the shard there
    (TFRecords cannot be resynchronised), keeping every record before it; `skip_log` counts the
    records read and names the shard when a pass over it stops short of its size."""
    chunks = tf.data.TFRecordDataset(path, buffer_size=8 << 20).ignore_errors().batch(_COUNT_CHUNK)
    chunks = chunks.concatenate(tf.data.Dataset.from_tensors(tf.constant([], tf.string)))  # end of pass

    def count(chunk):
        with tf.control_dependencies([skip_log.count_read_tf(path, chunk)]):
            return tf.identity(chunk)

    return chunks.map(count).unbatch()


def _read_records(files, deterministic: bool, skip_log: SkipLog):
    return files.interleave(
        lambda f: _shard_records(f, skip_log),
        cycle_length=16, block_length=1, num_parallel_calls=AUTOTUNE,
        deterministic=deterministic)


def _options(deterministic: bool) -> tf.data.Options:
    options = tf.data.Options()
    options.deterministic = deterministic
    # A distribution strategy given the whole dataset shards it by file.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.AUTO
    return options


@gin.configurable(denylist=["partitionings", "skip_log", "input_context", "count_only", "position"])
def train_dataset(file_pattern, partitionings, batch_size: int, *, image_size: int = 224,
                  scene_level=None, concept=None, tau_s: float = TAU_S, scene_matrices=None,
                  shuffle_buffer: int = 10_000, deterministic: bool = False,
                  repeat: bool = True, seed=None, skip_log: SkipLog | None = None,
                  input_context: tf.distribute.InputContext | None = None,
                  count_only: bool = False, position: DataPosition | None = None) -> tf.data.Dataset | int:
    """The §4 training pipeline.

    Args:
      file_pattern: glob (or list of globs) of TFRecord shards.
      partitionings: sequence of `geoest.geo.Partitioning`; one label each, from lat/lon.
      batch_size: the global batch. With `input_context` (distribute_datasets_from_function)
        each input pipeline yields its per-replica share.
      image_size: output side (px).
      scene_level: None, "S3", "S16" or "S365": add the scene label for the MTN (§3.3).
      concept: None or "indoor" / "natural" / "urban": keep only photos whose concept
        probability exceeds tau_s (the ISN training set, §4).
      tau_s: the ISN threshold.
      scene_matrices: `SceneHierarchy` (or {"S3": [365,3], "S16": [365,16]}) to derive S3
        probabilities and S16 labels from stored Places365 probabilities (records with stored
        scene labels need none).
      shuffle_buffer: examples in the shuffle buffer.
      deterministic: the same order (and, with a seed, the same crops) every run.
      repeat: repeat forever.
      seed: shuffling and augmentation seed; default 0 when deterministic, else random.
      skip_log: a SkipLog to count what is dropped: photos in no cell of some partitioning,
        photos filtered by scene, unreadable photos (named) and damaged shards (named).
      input_context: a `tf.distribute.InputContext`, to shard files and split the batch.
      count_only: return the number of photos one pass yields instead, from the records alone:
        parsed, labelled and filtered as below, no photo decoded (a JPEG corrupt inside complete
        start and end markers counts here and is dropped when decoded).
      position: a `DataPosition` (with `repeat`): passes rebuilt on their own from (seed, pass),
        the run starting at the position its variables hold, and each batch's position logged.
        Its seed variable is the seed (a random one is drawn into it when `seed` is None).

    Returns:
      tf.data.Dataset of (images uint8 [B, S, S, 3],
      {p.name: int64 [B] for p in partitionings} plus "scene": int64 [B] with a scene_level);
      with count_only, an int.
    """
    _check_scene_args(scene_level, concept, tau_s, scene_matrices)
    if count_only:
        skip_log = skip_log or SkipLog()
        labelled = _read_records(_record_files(file_pattern, False, None, input_context, skip_log), False,
                                 skip_log).batch(
            _PARSE_BATCH).map(lambda s: _label_stage(s, skip_log, partitionings, scene_level=scene_level,
                                                     concept=concept, tau_s=tau_s, scene_matrices=scene_matrices),
                              num_parallel_calls=AUTOTUNE, deterministic=False)
        sizes = labelled.map(lambda kept: tf.size(kept["id"], tf.int64))
        return int(sizes.reduce(tf.constant(0, tf.int64), lambda total, n: total + n).numpy())
    if seed is None and deterministic:
        seed = 0
    skip_log = skip_log if skip_log is not None else SkipLog()
    if input_context is not None:
        batch_size = input_context.get_per_replica_batch_size(batch_size)
    names = [p.name for p in partitionings]

    def label(stream):
        return stream.batch(_PARSE_BATCH).map(
            lambda s: _label_stage(s, skip_log, partitionings, scene_level=scene_level,
                                   concept=concept, tau_s=tau_s, scene_matrices=scene_matrices),
            num_parallel_calls=AUTOTUNE, deterministic=deterministic).unbatch()

    if position is not None and repeat:
        return _positioned_train_dataset(file_pattern, label, position, seed, batch_size, image_size, names,
                                         scene_level, shuffle_buffer, deterministic, input_context, skip_log)
    ds = _read_records(_record_files(file_pattern, True, seed, input_context, skip_log), deterministic,
                       skip_log)
    if shuffle_buffer > 1:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = label(ds)
    # One augmentation seed per photo, (pipeline seed, position in the stream): reproducible
    # with a seed whatever the parallelism, and no second data source to confuse auto-sharding.
    base_seed = seed if seed is not None else int(np.random.default_rng().integers(2**31))
    if input_context is not None:
        base_seed = base_seed * 1000 + input_context.input_pipeline_id
    ds = ds.enumerate()

    def parse(position, example):
        element_seed = tf.stack([tf.constant(base_seed, tf.int64), position])
        image, decoded = train_image(example["encoded"], element_seed, image_size)
        return image, example_labels(example, names, scene_level), decoded

    ds = ds.map(parse, num_parallel_calls=AUTOTUNE, deterministic=deterministic)
    ds = _decoded_only(ds)   # corrupt data inside a complete-looking JPEG
    ds = ds.batch(batch_size, drop_remainder=repeat, num_parallel_calls=AUTOTUNE,
                  deterministic=deterministic)
    return ds.prefetch(AUTOTUNE).with_options(_options(deterministic))


def _decoded_only(ds):
    """Drops the elements (..., decoded) whose photo did not decode, and the flag."""

    def decoded(*element):
        return element[-1]

    def without_flag(*element):
        return element[:-1]

    return ds.filter(decoded).map(without_flag)


def _positioned_train_dataset(file_pattern, label, position, seed, batch_size, image_size, names, scene_level,
                              shuffle_buffer, deterministic, input_context, skip_log):
    """`train_dataset` with a `DataPosition`: pass k of the records is shuffled with (seed, k) and
    labelled on its own; the stream starts at the position's pass, past its consumed photos (not
    decoded); each yielded batch is logged with its position."""
    if seed is not None:
        position.seed.assign(seed)
    elif int(position.seed.numpy()) == 0 and not deterministic:
        position.seed.assign(int(np.random.default_rng().integers(1, 2**31)))
    files = _record_files(file_pattern, False, None, input_context, skip_log)
    worker = input_context.input_pipeline_id if input_context is not None else 0

    def one_pass(start, k):
        pass_seed = start[3] * 1000 + k                 # (seed, pass): any pass rebuilt on its own
        # tf.random's get_seed compares a tensor op seed with 0 when the global seed is 0
        # (keras.utils.set_random_seed(0)), which fails while tracing: trace under a nonzero one.
        graph = tf.compat.v1.get_default_graph()
        global_seed = graph.seed
        if global_seed is not None and global_seed % (2**31 - 1) == 0:
            graph.seed = 1
        try:
            shuffled = files.shuffle(4096, seed=pass_seed)
            stream = _read_records(shuffled, deterministic, skip_log)
            if shuffle_buffer > 1:
                stream = stream.shuffle(shuffle_buffer, seed=pass_seed)
        finally:
            graph.seed = global_seed
        stream = label(stream).enumerate()
        stream = stream.skip(tf.where(k == start[1], start[2], 0))   # consumed before a resume
        return stream.map(lambda index, example: (start[0], start[3], k, index, example))

    def passes(start):
        return tf.data.Dataset.range(start[1], tf.int64.max).flat_map(lambda k: one_pass(start, k))

    ds = tf.data.Dataset.range(1).map(lambda _: position.start_tf()).flat_map(passes)

    def parse(generation, pass_seed, k, index, example):
        # One augmentation seed per photo, from (seed, worker) and (pass, position in the pass).
        element_seed = tf.stack([pass_seed * 1000 + worker, k * 2**32 + index])
        image, decoded = train_image(example["encoded"], element_seed, image_size, position.count_undecodable)
        return image, example_labels(example, names, scene_level), (generation, k, index), decoded

    ds = ds.map(parse, num_parallel_calls=AUTOTUNE, deterministic=deterministic)
    ds = _decoded_only(ds)   # JPEG data that does not decode: counted (`DataPosition.undecodable`)
    ds = ds.batch(batch_size, drop_remainder=True, num_parallel_calls=AUTOTUNE, deterministic=deterministic)

    def logged(images, labels, where):
        generation, k, index = where
        with tf.control_dependencies([position.record_tf(generation[0], k, index)]):
            return tf.identity(images), labels

    ds = ds.map(logged)      # sequential: batches are logged in the order Keras receives them
    return ds.prefetch(AUTOTUNE).with_options(_options(deterministic))


def example_labels(example, names, scene_level=None) -> dict:
    """The targets of one configuration from a labelled example (`_label_stage`), for training
    and validation alike: {name: int64 class for name in names} plus "scene" (int64, the label at
    `scene_level`) with a scene_level; -1 where there is none."""
    labels = {name: example[name] for name in names}
    if scene_level is not None:
        labels["scene"] = example["scene"]
    return labels


def _eval_element(example, image, names, scene_level):
    out = {"crops": image, "id": example["id"], "lat": example["lat"], "lon": example["lon"],
           "probs3": example["probs3"], "scene_labels": example["scene_labels"]}
    out.update(example_labels(example, names, scene_level))
    return out


@gin.configurable(denylist=["partitionings", "skip_log", "input_context"])
def eval_dataset(file_pattern, batch_size: int, *, image_size: int = 224, partitionings=(),
                 scene_level=None, scene_matrices=None, skip_log: SkipLog | None = None,
                 input_context: tf.distribute.InputContext | None = None) -> tf.data.Dataset:
    """The §3.4 evaluation pipeline: every record once, in file order, three crops each.

    Labels come from the parser of the training pipeline (`_label_stage`, `example_labels`);
    photos without one are kept (label -1). Unreadable photos are dropped and named in
    `skip_log`, and so is a damaged shard (its records before the damage are kept).
    Photos whose JPEG data fails to decode are dropped too: `skip_log.records_read` less
    the photos yielded and `skip_log.counts` says how many.

    Returns:
      tf.data.Dataset of {"crops": uint8 [B, 3, S, S, 3], "id": string [B],
      "lat": float32 [B], "lon": float32 [B], "probs3": float32 [B, 3] (NaN if unknown),
      "scene_labels": int64 [B, 3] (S3, S16, S365; -1 if unknown), p.name: int64 [B] for p in
      partitionings, and "scene": int64 [B] (the label at scene_level) with a scene_level}.
    """
    _check_scene_args(scene_level, None, TAU_S, scene_matrices)
    skip_log = skip_log if skip_log is not None else SkipLog()
    if input_context is not None:
        batch_size = input_context.get_per_replica_batch_size(batch_size)
    names = [p.name for p in partitionings]
    files = _record_files(file_pattern, False, None, input_context, skip_log)
    ds = files.flat_map(lambda f: _shard_records(f, skip_log))
    ds = ds.batch(_PARSE_BATCH).map(
        lambda s: _label_stage(s, skip_log, partitionings, scene_level=scene_level,
                               scene_matrices=scene_matrices, drop_unlabelled=False),
        num_parallel_calls=AUTOTUNE, deterministic=True).unbatch()
    ds = ds.map(lambda ex: _eval_element(
        ex, three_crops(tf.io.decode_jpeg(ex["encoded"], channels=3), image_size), names, scene_level),
        num_parallel_calls=AUTOTUNE, deterministic=True)
    ds = ds.ignore_errors(log_warning=True)
    ds = ds.batch(batch_size, num_parallel_calls=AUTOTUNE, deterministic=True)
    return ds.prefetch(AUTOTUNE).with_options(_options(True))


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


def small_reason(min_side: int) -> str:
    """The SkipLog reason of a photo whose shorter side is below `min_side` px."""
    return f"shorter side below {min_side} px (--min_side)"


def image_dataset(paths, batch_size: int = 32, *, image_size: int = 224,
                  skip_log: SkipLog | None = None, min_side: int = 0) -> tf.data.Dataset:
    """Three-crop inputs (§3.4) from image files, for predicting on your own photos.

    JPEG, PNG, BMP and GIF (first frame) are read. A file is first checked by its first bytes and
    header (`photo_problem`): one that cannot be opened, is of another kind (never read whole) or
    whose shorter side is below `min_side` px is dropped and named in `skip_log`, like an empty or
    truncated one.

    Args:
      paths: sequence of file paths.
      min_side: smallest shorter side (px) of a photo answered; 0 answers any size.
    Returns:
      tf.data.Dataset of {"crops": uint8 [B, 3, S, S, 3], "id": string [B] (the
      path as given)}, in the order of `paths` less the dropped files.
    """
    skip_log = skip_log if skip_log is not None else SkipLog()
    paths = [str(p) for p in paths]
    if not paths:
        raise InputError("image_dataset: no image paths given")
    with concurrent.futures.ThreadPoolExecutor(8) as pool:     # file heads, in parallel on network disks
        problems = list(pool.map(lambda p: photo_problem(p, min_side), paths))
    for path, problem in zip(paths, problems):
        if problem:
            skip_log.add(path, problem)
    paths = [p for p, problem in zip(paths, problems) if not problem]
    if not paths:
        return tf.data.Dataset.from_tensor_slices({"crops": tf.zeros([0, 3, image_size, image_size, 3], tf.uint8),
                                                   "id": tf.zeros([0], tf.string)}).batch(batch_size)

    def check(batch):      # the kind is known (photo_problem): a JPEG without its end is truncated
        is_jpeg, has_end = _jpeg_looks_complete(batch["contents"])
        return _drop_logged(batch, tf.where(is_jpeg & ~has_end, _REASONS.index(TRUNCATED), -1), skip_log)

    def read(path):
        return {"id": path, "contents": tf.io.read_file(path)}

    ds = tf.data.Dataset.from_tensor_slices(paths).map(read, num_parallel_calls=AUTOTUNE,
                                                       deterministic=True)
    ds = ds.ignore_errors(log_warning=True)     # a missing or unreadable file
    ds = ds.batch(64).map(check).unbatch()
    ds = ds.map(lambda ex: {"crops": three_crops(
        tf.io.decode_image(ex["contents"], channels=3, expand_animations=False), image_size),
        "id": ex["id"]}, num_parallel_calls=AUTOTUNE, deterministic=True)
    ds = ds.ignore_errors(log_warning=True)
    return ds.batch(batch_size).prefetch(AUTOTUNE)
