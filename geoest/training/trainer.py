"""The §4 training run of any Table-3 variant: build, compile, resume, fit, keep the best model.

Files in model_dir:
  best.keras, best.json      best-on-validation model (no optimizer state) and its val_* metrics
  checkpoints/ckpt-<step>.*  model + optimizer (step counter included), every N steps and each epoch
  logs/                      metrics.csv (one row per epoch) and TensorBoard (train/, validation/)
  operative_config.gin       the gin parameters the run used
  variant.json               gin files and heads of the run; another variant in this dir is refused
  partitionings/*.csv        the partitionings of the geo heads (Class2GPS needs them)
  train_images.json          images per epoch, counted once from the records (no photo decoded),
                             and the records of one pass dropped before decoding, by reason
  train.lock                 held while a run trains here (pid and host); a second run is refused

A run stopped by SIGTERM or SIGINT finishes its step, writes a checkpoint there (with the data
position of TFRecord inputs, `geoest.data.position.DataPosition`) and raises
`geoest.interrupt.Interrupted`; the same call resumes at that step and photo.
"""
import functools
import importlib.util
import inspect
import json
import logging
import os
import shutil
import time

import gin
import keras
import tensorflow as tf

from geoest import interrupt
from geoest.errors import InputError
from geoest.files import write_text
from geoest.geo import Hierarchy, Partitioning, read_partitionings
from geoest.locks import hold_lock
from geoest.models import SCENE_HEAD, Top1Accuracy, add_weight_decay, build_model, make_losses, output_sizes
from geoest.models.backbones import imagenet_weights
from geoest.releases import check_release
from geoest.scene.places365 import LEVEL_CLASSES   # §3.2 scene sets: S3, S16, S365
from geoest.training.callbacks import GeoValidation, PeriodicCheckpoint
from geoest.training.distribute import is_chief, scratch_dir
from geoest.training.inputs import require_images
from geoest.training.optimization import make_optimizer
from geoest.training.preemption import SkipAccounting, StopOnSignal

BEST_MODEL = "best.keras"
CHECKPOINTS = "checkpoints"
VARIANT = "variant.json"
OPERATIVE_CONFIG = "operative_config.gin"
LOCK = "train.lock"
# `_build_for_fit` relies on private Keras attributes; these are the releases it was checked on
# (setup.py pins the same range).
KERAS_CHECKED = ((3, 15), (3, 16))   # [lowest, first unchecked)


def check_keras_version(version: str = keras.__version__) -> None:
    """Refuses, in one line, a Keras release the private-API workaround was not checked on."""
    check_release("keras", version, KERAS_CHECKED,
                  "geoest's training loop uses private Keras API for multi-worker training")


def fetch_backbone_weights() -> None:
    """Makes sure the ImageNet weights the gin config asks for (§4) are in Keras' cache, before any
    data is read: offline, a run stops at once with the file to place and where."""
    arguments = {name: p.default for name, p in inspect.signature(build_model).parameters.items()}
    arguments.update(gin.get_bindings(build_model))
    if arguments["weights"] == "imagenet":
        imagenet_weights(arguments["backbone"])


def check_variant(model_dir: str, variant: dict) -> None:
    """Writes model_dir/variant.json, or checks that the one there describes the same variant."""
    path = os.path.join(model_dir, VARIANT)
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            stored = json.load(f)
        if stored != variant:
            raise InputError(f"model_dir {model_dir} holds a different run: {stored} (from {path}); "
                             f"this run is {variant}. Use another --model_dir, or the same gin files "
                             "and partitionings to resume.")
        return
    with open(path, "w", encoding="utf-8") as f:
        json.dump(variant, f, indent=1)


def initialize_from(model: keras.Model, path: str) -> None:
    """Copies the weights of a trained model (a .keras file or a model dir) into `model`, by layer name.

    Every geo head of `model` must be in the source with the same number of classes; a scene head
    missing there stays newly initialised (fine-tuning an MTN from a baseline).
    """
    source_path = os.path.join(path, BEST_MODEL) if os.path.isdir(path) else path
    if not os.path.isfile(source_path):
        raise InputError(f"init_from: {source_path} does not exist; expected a .keras model or a model dir "
                         f"holding {BEST_MODEL}")
    source = keras.saving.load_model(source_path, compile=False)
    have, want = output_sizes(source), output_sizes(model)
    wrong = {k: v for k, v in want.items() if k != SCENE_HEAD and have.get(k) != v}
    if wrong or (SCENE_HEAD in want and have.get(SCENE_HEAD, want[SCENE_HEAD]) != want[SCENE_HEAD]):
        raise InputError(f"init_from {source_path}: its heads {have} do not match this run's partitioning "
                         f"files and scene level {want}")
    by_name = {layer.name: layer for layer in source.layers}
    for layer in model.layers:
        if layer.name in by_name and layer.weights:
            layer.set_weights(by_name[layer.name].get_weights())
    logging.info("initialised from %s", source_path)


def _holding_model_dir(train_fn):
    """Runs `train_fn` while holding model_dir/train.lock (on the chief, which writes model_dir), so
    that two trainings never interleave their checkpoints, logs and best model. An unchecked Keras
    and missing ImageNet weights are refused first, before the model dir is touched."""

    @functools.wraps(train_fn)
    def holding(model_dir, strategy=None, **kwargs):
        check_keras_version()
        strategy = strategy or tf.distribute.get_strategy()
        fetch_backbone_weights()
        if not is_chief(strategy):
            return train_fn(model_dir, strategy, **kwargs)
        new = not os.path.exists(model_dir)
        os.makedirs(model_dir, exist_ok=True)
        try:
            with hold_lock(os.path.join(model_dir, LOCK), f"model dir {model_dir}"):
                return train_fn(model_dir, strategy, **kwargs)
        except InputError:
            # A configuration refused before any checkpoint: the model dir this run made goes too.
            if new and not tf.train.latest_checkpoint(os.path.join(model_dir, CHECKPOINTS)):
                shutil.rmtree(model_dir, ignore_errors=True)
            raise

    return holding


@gin.configurable(denylist=["model_dir", "strategy", "variant", "callbacks"])
@_holding_model_dir
def train(model_dir: str, strategy: tf.distribute.Strategy | None = None, *, variant=(), callbacks=(),
          partitionings=gin.REQUIRED, partitionings_dir=None, scene_level=None, inputs=gin.REQUIRED,
          image_size=224, batch_size=128, epochs=15, steps_per_epoch=None, validation_steps=None,
          checkpoint_every_n_steps=1000, keep_checkpoints=3, init_from=None, monitor="val_loss", patience=None,
          mixed_precision=None, jit_compile=False, steps_per_execution=1, max_skipped=0.01) -> keras.Model:
    """Trains one variant (§3.3, §4); re-running with the same model_dir resumes.

    Args:
      model_dir: where checkpoints, logs and the best model go (see the module docstring).
      strategy: a tf.distribute strategy (`geoest.training.make_strategy`); None: the default one.
      variant: names of the gin files of the run; a model_dir trained with others is refused.
      callbacks: extra Keras callbacks (run after the trainer's own).
      partitionings: partitioning CSV files, coarse to fine; one geo head each, named by file stem.
      partitionings_dir: directory of relative `partitionings` names.
      scene_level: None, or "S3" / "S16" / "S365" for the MTN scene head (§3.3).
      inputs: input function (`tfrecord_inputs`, `synthetic_inputs`): see geoest.training.inputs.
      image_size, batch_size: input side S and global batch (§4: 224, 128).
      epochs, steps_per_epoch: §4: 15 epochs; steps per epoch from the number of images when None.
      validation_steps: batches per validation (all when None).
      checkpoint_every_n_steps, keep_checkpoints: checkpoint frequency and how many to keep.
      init_from: a .keras model or model dir to start from (§4 fine-tuning, `gin/finetune.gin`; ISNs
        from base_M).
      monitor: the val_* metric choosing the best model (minimised when it names a loss).
      patience: stop when `monitor` has not improved for this many epochs (None: run every epoch).
      mixed_precision: None, "mixed_float16" (GPU) or "mixed_bfloat16" (TPU).
      jit_compile, steps_per_execution: XLA and steps per compiled call, passed to `compile`.
      max_skipped: the largest fraction of the training photos read in an epoch that may be lost
        to damage (unreadable or undecodable JPEGs) before the run stops (TFRecord inputs).
    Returns:
      The trained model (the last step's weights; the best one is in model_dir/best.keras).
    """
    strategy = strategy or tf.distribute.get_strategy()
    # Other workers write to a scratch dir: saving is collective, so they save too, but elsewhere.
    run_dir = model_dir if is_chief(strategy) else scratch_dir(strategy)
    os.makedirs(run_dir, exist_ok=True)
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise InputError(f"train.batch_size={batch_size!r}; expected a positive whole number")
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 0:
        raise InputError(f"train.epochs={epochs!r}; expected a whole number >= 0")
    if scene_level is not None and scene_level not in LEVEL_CLASSES:
        raise InputError(f"train.scene_level={scene_level!r}; expected None or one of {sorted(LEVEL_CLASSES)}")
    try:
        parts = read_partitionings(partitionings, partitionings_dir)
    except InputError as err:
        raise InputError(f"{err} (set PARTITIONINGS_DIR or train.partitionings)") from None
    check_partitionings(run_dir, parts)
    hierarchy = Hierarchy(parts) if len(parts) > 1 else None
    data = inputs(parts, batch_size, image_size, scene_level)
    require_images(data)
    steps_per_epoch = steps_per_epoch or _steps_per_epoch(run_dir, data, batch_size)
    previous_policy = keras.mixed_precision.global_policy()
    if mixed_precision:
        keras.mixed_precision.set_global_policy(mixed_precision)
    try:
        with strategy.scope():
            model = build_model(parts, image_size=image_size,
                                scene_classes=LEVEL_CLASSES[scene_level] if scene_level else None)
            check_variant(run_dir, {"gin_files": list(variant), "heads": output_sizes(model)})
            add_weight_decay(model)
            losses, loss_weights = make_losses(model.output_names, partitionings=parts)
            model.compile(optimizer=make_optimizer(steps_per_epoch), loss=losses, loss_weights=loss_weights,
                          metrics={name: [Top1Accuracy()] for name in model.output_names},
                          jit_compile=jit_compile, steps_per_execution=steps_per_execution)
            model.optimizer.build(model.trainable_variables)
            manager = _restore_or_initialize(model, model_dir, run_dir, keep_checkpoints, init_from, data.position)
        _save_operative_config(run_dir)
        names = list(model.output_names)
        train_data = data.train.map(lambda x, y: (x, {k: y[k] for k in names}))
        validation = GeoValidation(data.validation, parts, hierarchy, strategy, loss_weights,
                                   os.path.join(run_dir, BEST_MODEL),
                                   monitor=monitor, steps=validation_steps, patience=patience)
        periodic = PeriodicCheckpoint(manager, checkpoint_every_n_steps, data.position)
        accounting = []
        if data.position is not None:
            images, skips = _train_images(run_dir, data)
            accounting = [SkipAccounting(data.position, images, skips, batch_size, max_skipped)]
        all_callbacks = [validation, *accounting, periodic, StopOnSignal(periodic),
                         *_log_callbacks(os.path.join(run_dir, "logs")), *callbacks]
        _build_for_fit(model, train_data.element_spec)
        with interrupt.deferred():
            _fit(model, train_data, epochs, steps_per_epoch, all_callbacks, validation.converged, data.position)
            step = int(model.optimizer.iterations.numpy())
            interrupt.stop_if_requested(f"checkpoint at step {step} saved in {manager.directory}")
        _save_operative_config(run_dir)
        return model
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
        if not is_chief(strategy):
            shutil.rmtree(scratch_dir(strategy), ignore_errors=True)


def _log_callbacks(log_dir) -> list:
    """Epoch metrics appended to log_dir/metrics.csv, and TensorBoard logs when tensorboard is installed."""
    os.makedirs(log_dir, exist_ok=True)
    loggers = [keras.callbacks.CSVLogger(os.path.join(log_dir, "metrics.csv"), append=True)]
    if importlib.util.find_spec("tensorboard") is not None:
        loggers.append(keras.callbacks.TensorBoard(log_dir))
    else:
        logging.warning("tensorboard is not installed: no TensorBoard logs (metrics go to %s/metrics.csv)", log_dir)
    return loggers


def _steps_per_epoch(model_dir, data, batch_size) -> int:
    return max(1, _train_images(model_dir, data)[0] // batch_size)


def _train_images(model_dir, data) -> tuple:
    """(photos of one pass, {reason: records of a pass dropped before decoding}), counted once
    without decoding and kept in model_dir/train_images.json."""
    cache = os.path.join(model_dir, "train_images.json")
    if os.path.exists(cache):
        with open(cache, encoding="utf-8") as f:
            stored = json.load(f)
        if "skipped" in stored or data.position is None:
            return stored["train_images"], stored.get("skipped", {})
    start = time.perf_counter()
    images = data.count()
    logging.info("%d training images in %s (counted in %.1f s, before decoding)", images, data.description,
                 time.perf_counter() - start)
    write_text(cache, json.dumps({"train_images": images, "skipped": data.count_skips}))
    return images, data.count_skips


def _restore_or_initialize(model, model_dir, run_dir, keep, init_from, position=None) -> tf.train.CheckpointManager:
    """Resumes from the latest checkpoint in model_dir, else starts from `init_from` (if any).

    With a `DataPosition`, the checkpoint holds it too (`data`), and a resume restores it.
    Returns the manager saving to run_dir/checkpoints (run_dir: model_dir, or a worker's scratch dir).
    """
    checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer)
    latest = tf.train.latest_checkpoint(os.path.join(model_dir, CHECKPOINTS))
    if position is not None:
        saved = {name for name, _ in tf.train.list_variables(latest)} if latest else set()
        if not latest or any(name.startswith("data/") for name in saved):
            checkpoint.data = position.checkpoint()
        else:
            logging.warning("%s holds no data position: the resumed run starts its data afresh", latest)
    if latest:
        try:
            checkpoint.restore(latest).assert_existing_objects_matched()
        except (ValueError, AssertionError) as error:
            raise InputError(f"checkpoint {latest} does not fit this model (partitioning files or backbone "
                             f"changed?): {error}") from error
        logging.info("resuming from %s at step %d%s", latest, int(model.optimizer.iterations.numpy()),
                     ", data pass %d after %d photos" % position.value() if hasattr(checkpoint, "data") else "")
    elif init_from:
        initialize_from(model, init_from)
    return tf.train.CheckpointManager(checkpoint, os.path.join(run_dir, CHECKPOINTS), max_to_keep=keep)


def check_partitionings(model_dir: str, parts) -> None:
    """Keeps a copy of each partitioning in model_dir/partitionings/, or checks it is the same one.

    Same-named heads of the same size over other cells would silently mean other classes.
    """
    os.makedirs(os.path.join(model_dir, "partitionings"), exist_ok=True)
    for p in parts:
        kept = os.path.join(model_dir, "partitionings", f"{p.name}.csv")
        if not os.path.exists(kept):
            p.to_csv(kept)
        elif Partitioning.from_csv(kept) != p:
            raise InputError(f"partitioning {p.name!r} is not the one this model_dir was trained with ({kept}); "
                             "the checkpoint's heads classify those cells. Use another --model_dir.")


def _save_operative_config(model_dir) -> None:
    with open(os.path.join(model_dir, OPERATIVE_CONFIG), "w", encoding="utf-8") as f:
        f.write(gin.operative_config_str())


def _build_for_fit(model, element_spec) -> None:
    """Builds the compiled losses and metrics from the input spec, before `fit`.

    Keras 3 `fit` otherwise builds them from a first batch that it averages with
    `strategy.reduce`, which fails for MultiWorkerMirroredStrategy (a nested batch); with
    everything built here, that step is skipped. (Workarounds for keras 3.15, private API.)
    """
    with model.distribute_strategy.scope():
        model._symbolic_build(data_batch=element_spec)  # noqa: SLF001
    model._maybe_symbolic_build = lambda *args, **kwargs: None  # noqa: SLF001
    if isinstance(model.distribute_strategy, tf.distribute.MultiWorkerMirroredStrategy):
        # Keras 3 then averages each step's logs with strategy.reduce("MEAN", v, axis=0), which
        # fails for scalars: give them a leading axis of one (the mean removes it again).
        step = model.train_step
        model.train_step = lambda data: {k: tf.reshape(v, [1]) for k, v in step(data).items()}


def _fit(model, train_data, epochs, steps_per_epoch, callbacks, converged, position=None) -> None:
    """Runs the remaining steps; a run stopped mid-epoch first finishes that epoch.

    converged(epochs_done) -> bool stops the run early (the validation loss no longer improves).
    position: the `DataPosition` of `train_data`, told where each `fit` starts.
    """
    step = int(model.optimizer.iterations.numpy())
    epoch, done_in_epoch = divmod(step, steps_per_epoch)
    if epoch >= epochs or (not done_in_epoch and converged(epoch)):
        logging.info("training already finished: step %d of %d", step, epochs * steps_per_epoch)
        return
    if done_in_epoch:
        logging.info("resuming epoch %d at its step %d", epoch + 1, done_in_epoch + 1)
        if position is not None:
            position.begin(step)
        model.fit(train_data, epochs=epoch + 1, initial_epoch=epoch, steps_per_epoch=steps_per_epoch - done_in_epoch,
                  callbacks=callbacks, shuffle=False, verbose=2)
        epoch += 1
    if epoch < epochs and not converged(epoch):
        if position is not None:
            position.begin(int(model.optimizer.iterations.numpy()))
        model.fit(train_data, epochs=epochs, initial_epoch=epoch, steps_per_epoch=steps_per_epoch,
                  callbacks=callbacks, shuffle=False, verbose=2)
