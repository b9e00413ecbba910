"""tf.data input pipelines: §4 training augmentation, §3.4 three-crop evaluation.

Stages (the decoder, `geoest.data.decoder`, then the parser, `geoest.data.crops`):
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
import concurrent.futures

import gin
import numpy as np
import tensorflow as tf

from geoest.data.crops import three_crops, train_image
from geoest.data.decoder import check_scene_args, example_labels, label_batch
from geoest.data.photo_checks import jpeg_looks_complete, photo_problem
from geoest.data.position import DataPosition
from geoest.data.skip_log import REASONS, TRUNCATED, SkipLog, drop_logged
from geoest.errors import InputError
from geoest.scene.statistics import TAU_S             # §4: ISN training images have p(concept) > 0.3

AUTOTUNE = tf.data.AUTOTUNE
_PARSE_BATCH = 1024           # records parsed and labelled together (vectorised)
_COUNT_CHUNK = 32             # records of one shard counted per call into the SkipLog


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
    check_scene_args(scene_level, concept, tau_s, scene_matrices)
    if count_only:
        skip_log = skip_log or SkipLog()
        labelled = _read_records(_record_files(file_pattern, False, None, input_context, skip_log), False,
                                 skip_log).batch(
            _PARSE_BATCH).map(lambda s: label_batch(s, skip_log, partitionings, scene_level=scene_level,
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
            lambda s: label_batch(s, skip_log, partitionings, scene_level=scene_level,
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

    Labels come from the parser of the training pipeline (`label_batch`, `example_labels`);
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
    check_scene_args(scene_level, None, TAU_S, scene_matrices)
    skip_log = skip_log if skip_log is not None else SkipLog()
    if input_context is not None:
        batch_size = input_context.get_per_replica_batch_size(batch_size)
    names = [p.name for p in partitionings]
    files = _record_files(file_pattern, False, None, input_context, skip_log)
    ds = files.flat_map(lambda f: _shard_records(f, skip_log))
    ds = ds.batch(_PARSE_BATCH).map(
        lambda s: label_batch(s, skip_log, partitionings, scene_level=scene_level,
                               scene_matrices=scene_matrices, drop_unlabelled=False),
        num_parallel_calls=AUTOTUNE, deterministic=True).unbatch()
    ds = ds.map(lambda ex: _eval_element(
        ex, three_crops(tf.io.decode_jpeg(ex["encoded"], channels=3), image_size), names, scene_level),
        num_parallel_calls=AUTOTUNE, deterministic=True)
    ds = ds.ignore_errors(log_warning=True)
    ds = ds.batch(batch_size, num_parallel_calls=AUTOTUNE, deterministic=True)
    return ds.prefetch(AUTOTUNE).with_options(_options(True))


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
        is_jpeg, has_end = jpeg_looks_complete(batch["contents"])
        return drop_logged(batch, tf.where(is_jpeg & ~has_end, REASONS.index(TRUNCATED), -1), skip_log)

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
