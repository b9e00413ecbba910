"""What the absl mains share, so that each says it once.

- One exit convention: `run(main)` parses the flags and runs `main`; bad input - a flag absl
  refuses (unknown, ill-typed, outside its enum, required and missing), a stray argument, or a
  `geoest.InputError` raised by the work - prints one line `error: <message>` on stderr and exits
  with status 2, never a traceback.
- The flags several mains take, defined once with one name, default and help text:
  `define_model_flags` (--model_dir, --partitionings, and with `located` --centers, --temperatures),
  `define_scene_flags` (ISN routing), `define_confidence_flags` (--region_mass, and with `answers`
  --min_confidence, --max_resolution_km).
- Flag strings to the data the library takes: `named_dirs` ("NAME=DIR" -> {name: dir}),
  `model_dirs_and_centers` ("NAME=DIR:geometric"),
  `methods_from_flags`, `confidence_settings` (and the flags it checks: `region_mass_flag`,
  `min_confidence_flag`, `max_resolution_flag`).

- Quiet by default: TensorFlow's C++ start-up lines (CPU features, oneDNN, CUDA drivers, cuInit)
  are hidden, so the first line a command prints is geoest's own (`quiet_native_logs`); pass
  --verbosity=1 (or set GEOEST_TF_LOGS=1, or TF_CPP_MIN_LOG_LEVEL yourself) to see them.
- SIGTERM and SIGINT (`geoest.interrupt`): a long run saves where it is and exits with status 75
  (`EXIT_INTERRUPTED`, "interrupted, resumable") after one line `interrupted: ...`; an OS error
  while writing (a full disk, a read-only folder) is one line naming the path, status 2.

absl flags are read here and in the mains only, never in the library.
"""
import atexit
import gc
import logging
import os
import pathlib
import re
import sys
import threading
from typing import NoReturn

from absl import app, flags

from geoest import interrupt
from geoest.errors import InputError, RefusedValue
from geoest.geo.checks import check_masses, check_max_resolution, check_min_confidence
from geoest.geo.partitioning import CENTERS

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = interrupt.EXIT_INTERRUPTED
# TensorFlow's native start-up lines, printed before its logging is configured (so
# TF_CPP_MIN_LOG_LEVEL does not reach them), and cuInit's error on a machine without a GPU.
_NATIVE_NOISE = re.compile(
    r"All log messages before absl::InitializeLog|cpu_feature_guard|port\.cc:\d+\] oneDNN|"
    r"To enable the following instructions|rebuild TensorFlow with the appropriate compiler flags|"
    r"cudart_stub|Could not find cuda drivers|failed call to cuInit|cuda_(platform|driver|executor)\.cc|"
    r"Unable to register cu(DNN|FFT|BLAS) factory|computation placer already registered|"
    r"TF-TRT Warning|This TensorFlow binary is optimized")
# The flags the functions below define belong to the main that calls them (its --help lists them).
flags.disclaim_key_flags()
# Gin appends "In call to configurable ..." lines to errors raised inside configurables.
_GIN_CONTEXT = "\n  In call to configurable"


# -- the exit convention --------------------------------------------------------------------------
def _one_line(message) -> str:
    """`message` on one line, without gin's binding context."""
    return " ".join(str(message).split(_GIN_CONTEXT)[0].split())


def exit_bad_input(message) -> NoReturn:
    """Prints `error: <message>` as one line on stderr and exits with status 2."""
    print("error: " + _one_line(message), file=sys.stderr)
    sys.exit(EXIT_BAD_INPUT)


def parse_flags(argv) -> list:
    """absl's flag parsing with the exit convention: a flag absl refuses, or an argument that is no
    flag (every geoest input is a --flag=value; `--images a.jpg b.jpg` would drop b.jpg), is bad
    input. Returns argv[:1]."""
    try:
        rest = flags.FLAGS(argv)
    except flags.Error as err:
        exit_bad_input(err)
    if len(rest) > 1:
        exit_bad_input(f"unexpected argument(s) {' '.join(map(repr, rest[1:]))}: give every input as --flag=value")
    return rest


def wants_native_logs(argv=None, environ=None) -> bool:
    """Whether TensorFlow's native logs were asked for: --verbosity >= 1 (absl's flag, also -v N)
    among the arguments, GEOEST_TF_LOGS=1, or TF_CPP_MIN_LOG_LEVEL set by the user."""
    argv = sys.argv if argv is None else argv
    environ = os.environ if environ is None else environ
    if environ.get("GEOEST_TF_LOGS", "") not in ("", "0") or "TF_CPP_MIN_LOG_LEVEL" in environ:
        return True
    for k, arg in enumerate(argv):
        value = None
        if arg.startswith(("--verbosity=", "-v=")):
            value = arg.split("=", 1)[1]
        elif arg in ("--verbosity", "-v") and k + 1 < len(argv):
            value = argv[k + 1]
        if value is not None:
            try:
                return int(value) >= 1
            except ValueError:
                return False
    return False


def quiet_native_logs() -> None:
    """Hides TensorFlow's native start-up logging unless `wants_native_logs()`: sets
    TF_CPP_MIN_LOG_LEVEL=2 (warnings and info) for TensorFlow imported later, and passes what the
    process writes to file descriptor 2 through a filter dropping the start-up lines printed before
    that setting applies (`_NATIVE_NOISE`). Python's own stderr (errors, logging, progress bars)
    goes straight to the terminal. Call before TensorFlow is imported."""
    if wants_native_logs() or getattr(quiet_native_logs, "done", False):
        return
    quiet_native_logs.done = True
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    logging.getLogger("tensorflow").setLevel(logging.WARNING)    # e.g. a line per checkpoint saved
    try:
        sys.stderr.flush()
        terminal = os.dup(2)
        read_end, write_end = os.pipe()
    except OSError:
        return
    sys.stderr = open(terminal, "w", buffering=1, encoding=getattr(sys.stderr, "encoding", None) or "utf-8",
                      errors="backslashreplace", closefd=False)
    os.dup2(write_end, 2)
    os.close(write_end)

    def relay():
        with open(read_end, "rb", closefd=True) as native:
            for line in native:
                if not _NATIVE_NOISE.search(line.decode("utf-8", "replace")):
                    os.write(terminal, line)

    thread = threading.Thread(target=relay, name="native-stderr", daemon=True)
    thread.start()

    def drain():
        os.dup2(terminal, 2)        # closes the pipe's write end: the relay reads to its end
        thread.join(timeout=2)

    atexit.register(drain)


def run(main) -> None:
    """`app.run` for every geoest main (`if __name__ == "__main__": run(main)`): flags parsed by
    `parse_flags`, an InputError from `main` reported by `exit_bad_input`; `main`'s return value is
    the exit status. SIGTERM / SIGINT: `geoest.interrupt` (one line, status 75); an OS error while
    writing: one line, status 2 (`os_error_line`)."""
    quiet_native_logs()
    interrupt.install()

    def checked(argv):
        try:
            return main(argv)
        except InputError as err:
            line, status = "error: " + _one_line(err), EXIT_BAD_INPUT
        except (interrupt.Interrupted, KeyboardInterrupt) as err:
            message = str(err) if isinstance(err, interrupt.Interrupted) else \
                "stopped by SIGINT; re-run the same command to resume"
            line, status = "interrupted: " + " ".join(message.split()), EXIT_INTERRUPTED
        except Exception as err:    # noqa: BLE001  an OS error while writing, also from TensorFlow's writers
            line = os_error_line(err)
            if line is None:
                raise
            line, status = "error: " + _one_line(line), EXIT_BAD_INPUT
        # Outside the except block the exception and its traceback are gone: the frames of a stopped
        # `fit` and their tf.data iterator are freed now, while the interpreter still runs the
        # iterator's threads (freed at interpreter exit, an iterator with a py_function in flight
        # waits forever for a thread Python has ended).
        gc.collect()
        print(line, file=sys.stderr)
        sys.exit(status)

    try:
        app.run(checked, flags_parser=parse_flags)
    except interrupt.Interrupted as err:     # while absl parses flags or starts up
        print("interrupted: " + str(err), file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)


_WRITE_ERRNOS = {28: "the disk is full", 122: "the disk quota is exceeded", 30: "the file system is read-only",
                 13: "permission denied", 27: "the file is too large for its file system", 5: "input/output error"}


def os_error_line(err: BaseException) -> str | None:
    """One line for an OS error while writing a file (a full disk, a quota, a read-only folder),
    naming the path and what was written; None for other errors. TensorFlow's writers raise
    `tf.errors.ResourceExhaustedError` / `UnknownError` ("... No space left on device") and are
    recognised by their message."""
    errno = getattr(err, "errno", None)
    text = str(err)
    if errno is None and "No space left on device" in text:
        errno = 28
    if errno not in _WRITE_ERRNOS:
        return None
    path = getattr(err, "geoest_path", None) or getattr(err, "filename", None) or next(iter(re.findall(r"(/[^\s;:'\"]+)", text)), "a file")
    what = getattr(err, "geoest_writing", None)
    return (f"cannot write {path}" + (f" ({what})" if what else "") + f": {_WRITE_ERRNOS[errno]}"
            f" [errno {errno}]; nothing half-written is kept: free space or fix the folder, then re-run "
            "the same command to resume")


# -- shared flags ---------------------------------------------------------------------------------
def define_model_flags(*, several: bool = False, required: bool = False, located: bool = True) -> None:
    """--model_dir and --partitionings; with `located`, also how answers are located: --centers
    (Class2GPS) and --temperatures.

    Args:
      several: --model_dir may repeat and name its models (DIR or NAME=DIR; evaluate); else one DIR.
      required: one --model_dir must be given (not with `several`).
      located: also define --centers and --temperatures.
    """
    if several:
        flags.DEFINE_multi_string("model_dir", [], "Trained model dir (DIR or NAME=DIR, NAME=DIR:geometric for "
                                  "the cells' centres as Class2GPS of that model alone); repeat for several.")
    else:
        flags.DEFINE_string("model_dir", None, "Trained model dir (best.keras and partitionings/).", required=required)
    flags.DEFINE_list("partitionings", [], "Partitioning CSVs (default: those in each model dir).")
    if located:
        flags.DEFINE_enum("centers", "mean", ["mean", "geometric"], "Class2GPS: cell mean coordinate (§3.4) or "
                          "the S2 cell's centre (base-vgg_c).")
        flags.DEFINE_string("temperatures", None, "Temperature file (python -m geoest.calibrate); default: each "
                            "model dir's calibration.json when it has one; 'none': uncalibrated.")


def define_scene_flags() -> None:
    """The ISNs and how photos are routed to them by scene (§3.3 ISNs, §3.2 scene hierarchy)."""
    flags.DEFINE_list("isn_dirs", [], "ISNs(M, f*, S3): indoor=DIR,natural=DIR,urban=DIR, each photo routed by "
                      "its scene (--scene_model) to one of them; named 'ISNs'.")
    flags.DEFINE_string("scene_model", None, "ISN routing: an MTN model dir, a scene classifier .keras file, or "
                        "'places365' (the converted Places365 ResNet-152, predict's default when converted); "
                        "evaluate's default: the test data's scene probabilities (meta CSV / records).")
    flags.DEFINE_enum("scene_output", None, ["probabilities", "logits"], "Only for a scene model whose last "
                      "layer does not tell: whether it outputs probabilities or logits (read from the model "
                      "otherwise).")
    flags.DEFINE_enum("scene_preprocess", "tf", ["tf", "caffe", "torch", "none"], "Input convention of a "
                      "float-input scene classifier: tf = [-1, 1] (an MTN and the converted Places365 "
                      "ResNet-152 take uint8 crops as they are).")
    flags.DEFINE_string("places365_dir", None, "Folder with the Places365 hierarchy files (S16 / S365 scenes).")


def define_confidence_flags(*, answers: bool = False) -> None:
    """--region_mass; with `answers`, also what an answer may say: --min_confidence (back-off) and
    --max_resolution_km (resolution cap)."""
    flags.DEFINE_list("region_mass", ["0.5", "0.9"], "Masses p of the confidence regions, each in (0, 1).")
    if answers:
        flags.DEFINE_float("min_confidence", 0.0, "Back-off: answer at the finest level whose predicted cell "
                           "holds at least this probability (fine -> middle -> coarse), else no answer; in [0, 1].")
        flags.DEFINE_float("max_resolution_km", None, "Resolution cap: no point, region or map finer than this "
                           "(km).")


def define_photo_flags(*, links: bool = True, min_side: bool = False, absolute_paths: bool = False) -> None:
    """How photos are read: with `links`, --follow_links (symbolic links in --images_dir leading out
    of it); with `min_side`, --min_side (photos too small to answer); with `absolute_paths`,
    --allow_absolute_paths (absolute IMG_IDs of the meta CSV)."""
    if absolute_paths:
        flags.DEFINE_bool("allow_absolute_paths", False, "Read absolute IMG_IDs of --meta_csv as they are "
                          "(otherwise they are skipped and named, like IMG_IDs whose '..' leaves --images_dir).")
    if links:
        flags.DEFINE_bool("follow_links", False, "Read photos through symbolic links in --images_dir that lead "
                          "outside it (otherwise they are skipped and named, like IMG_IDs whose '..' leaves it).")
    if min_side:
        flags.DEFINE_integer("min_side", None, "Photos whose shorter side is below this many pixels are skipped "
                             "and named, not answered; default a quarter of the model's crop side (56 px for "
                             "224 px crops); 0 answers any size.", lower_bound=0)


# -- flag strings to data -------------------------------------------------------------------------
def parse_named(spec: str, flag: str = "") -> tuple:
    """"NAME=DIR" -> (NAME, DIR); "DIR" -> (the folder's name, DIR)."""
    name, sep, path = spec.partition("=")
    if not sep:
        name, path = pathlib.Path(spec.rstrip("/")).name, spec
    if not name or not path:
        raise InputError(f"{flag} {spec!r}: expected NAME=DIR or DIR".lstrip())
    return name, path


def named_dirs(specs, flag: str) -> dict:
    """["DIR" or "NAME=DIR", ...] given to `flag` -> {name: dir}, in the order given; a name given
    twice is refused."""
    out = {}
    for spec in specs:
        name, path = parse_named(spec, flag)
        if name in out:
            raise InputError(f"{flag}: the name {name!r} is given twice ({out[name]}, {path}); "
                             "name each NAME=DIR")
        out[name] = path
    return out


def model_dirs_and_centers(specs, flag: str = "--model_dir") -> tuple:
    """["DIR", "NAME=DIR" or "NAME=DIR:mean|geometric", ...] -> ({name: dir}, {name: centers}): a
    ":geometric" suffix gives that model the cells' geometric centres (base-vgg_c of Table 6)
    whatever --centers says, so base-vgg and base-vgg_c are two rows of one run."""
    plain, centers = [], {}
    for spec in specs:
        path, sep, kind = spec.rpartition(":")
        if sep and kind in CENTERS:
            centers[parse_named(path, flag)[0]] = kind
            spec = path
        plain.append(spec)
    return named_dirs(plain, flag), centers


def methods_from_flags(values):
    """The methods of evaluate or predict (`geoest.inference.methods.load_methods`) from the
    flags of `define_model_flags` and `define_scene_flags`.

    Args:
      values: the parsed flags (absl's FLAGS).
    Returns:
      (list of Method, input image size S, the Places365 scene hierarchy of --places365_dir or None).
    """
    # Imported here: tools/benchmarks/model_step.py imports geoest.cli where only Keras, numpy, gin and
    # absl are installed (tests/test_model_step.py); the inference code needs more (PIL, scipy).
    from geoest.inference.methods import load_methods, load_scene_hierarchy_dir

    model_dirs = values.model_dir
    if not isinstance(model_dirs, list):   # one --model_dir (predict), or none beside --isn_dirs
        model_dirs = [model_dirs] if model_dirs else []
    hierarchy = load_scene_hierarchy_dir(values.places365_dir)
    model_dirs, model_centers = model_dirs_and_centers(model_dirs)
    methods, image_size = load_methods(
        model_dirs, named_dirs(values.isn_dirs, "--isn_dirs"), model_centers=model_centers,
        scene_model=values.scene_model, scene_output=values.scene_output, scene_preprocess=values.scene_preprocess,
        scene_hierarchy=hierarchy, partitioning_csvs=values.partitionings, centers=values.centers,
        calibration=temperatures_file(values.temperatures))
    return methods, image_size, hierarchy


def temperatures_file(value):
    """--temperatures as `load_calibration` takes it: None (each model dir's calibration.json when it
    has one), False for 'none' (uncalibrated), else the file's path."""
    return False if value == "none" else value


def _flag_value(check, flag: str, value):
    """`check(value)`, a refusal naming `flag` where the geo core names the value's symbol (p, q, K)."""
    try:
        return check(value)
    except RefusedValue as err:
        raise InputError(err.named(flag)) from None


def region_mass_flag(masses) -> tuple:
    """--region_mass as region masses p (`geoest.geo.checks.check_masses`), refused naming the flag."""
    return _flag_value(check_masses, "--region_mass", masses)


def min_confidence_flag(q) -> float:
    """--min_confidence as the back-off threshold q (`geoest.geo.checks.check_min_confidence`), refused
    naming the flag."""
    return _flag_value(check_min_confidence, "--min_confidence", q)


def max_resolution_flag(km) -> float:
    """--max_resolution_km as the resolution cap K (`geoest.geo.checks.check_max_resolution`), refused
    naming the flag."""
    return _flag_value(check_max_resolution, "--max_resolution_km", km)


def confidence_settings(values) -> dict:
    """The checked flags of `define_confidence_flags(answers=True)` and --centers, as keyword
    arguments of `geoest.geo.confidence.Confidence` (checked before any model is loaded)."""
    cap_km = values.max_resolution_km
    return dict(masses=region_mass_flag(values.region_mass),
                min_confidence=min_confidence_flag(values.min_confidence),
                max_resolution_km=None if cap_km is None else max_resolution_flag(cap_km),
                centers=values.centers)
