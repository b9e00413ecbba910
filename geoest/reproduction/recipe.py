"""The paper's whole recipe as data: from the URL lists and the published meta to both halves of
Table 6 (and Table 4), one `Stage` (one geoest command) after another.

    photos -> records   python -m geoest.download, per data set (MP-16, YFCC-25600, Im2GPS, Im2GPS3k)
                        (or geoest.build_tfrecords for a set given as a folder of photos)
    §3.1 partitionings  the published cells_50_{5000,2000,1000}.csv as they are
                        (geoest.create_partitioning only with `regenerate_partitionings`)
    §4 training         base(L, c/m/f), base(M), base-vgg(L, m): 15 epochs from ImageNet
    §4 fine-tuning      gin/finetune.gin for each of them (lr 0.001, <= 5 epochs, best on validation)
    §3.3 ISNs           from base(M)'s 15-epoch model, with the same fine-tuning stage
    Table 6             python -m geoest.evaluate on Im2GPS and Im2GPS3k, --reference, base-vgg_c(L, m)
                        as its own row (the base-vgg model located at the cells' geometric centres)

Paths stay as the user gave them (relative ones relative to where the recipe runs), so the printed
sequence (`python -m geoest.reproduce --dry_run`, docs/reproduce.md) reads as one would type it.
"""
import dataclasses
import os

from geoest.scene.places365 import CONCEPTS


@dataclasses.dataclass(frozen=True)
class DataSet:
    """One photo collection of the paper: `<name>_urls.csv` and `<name>_places365.csv` in the data dir.

    name: its file stem (mp16, yfcc25600, im2gps, im2gps3k); what: its role, for the printed sequence;
    prefix: its record shards' name prefix (the one gin/base/data.gin and evaluation read).
    """
    name: str
    what: str
    prefix: str

    @property
    def urls(self) -> str:
        return f"{self.name}_urls.csv"

    @property
    def meta(self) -> str:
        return f"{self.name}_places365.csv"


TRAINING = DataSet("mp16", "MP-16, the 4.7 M training photos (§4)", "train")
VALIDATION = DataSet("yfcc25600", "YFCC-25600, the 25,600 validation photos (§4)", "validation")
TEST_SETS = (DataSet("im2gps", "Im2GPS, 237 test photos", "test"),
             DataSet("im2gps3k", "Im2GPS3k, 2,997 test photos", "test"))
HALVES = dict(zip((t.name for t in TEST_SETS), ("top", "bottom")))    # Table 6: Im2GPS above, Im2GPS3k below
DATA_SETS = (TRAINING, VALIDATION, *TEST_SETS)

# §3.1, Table 1: tau_min 50, tau_max 5,000 / 2,000 / 1,000 (coarse, middle, fine), the file names of
# the published partitionings (gin/base/partitionings.gin).
PARTITIONINGS_FOLDER = "mp16_partitions"
TAUS = ((50, 5000), (50, 2000), (50, 1000))
PARTITIONINGS = tuple(f"cells_{lo}_{hi}.csv" for lo, hi in TAUS)
MIDDLE = PARTITIONINGS[1][:-len(".csv")]        # the head of the (L, m) models, and (M, m)

# §4: every model of Table 6 trained 15 epochs from ImageNet, then fine-tuned (gin files of gin/).
BASELINES = ("base_L_c", "base_L_m", "base_L_f", "base_M", "base_vgg_L_m")
ISN_FROM = "base_M"             # §3.3: the ISNs start from base(M)'s 15-epoch model (gin/base/isn.gin)
GEOMETRIC = "geometric"

# The methods of the evaluate runs (name: model) and the paper's row each gives (Table 6):
# (method, output) -> row; base_L_c / base_L_f are Table 3's, shown without a paper figure.
ROWS = (
    ("base_vgg_c", MIDDLE, "base-vgg_c(L, m)"),
    ("base_vgg", MIDDLE, "base-vgg(L, m)"),
    ("base_L_c", PARTITIONINGS[0][:-4], "base(L, c)"),
    ("base_L_m", MIDDLE, "base(L, m)"),
    ("base_L_f", PARTITIONINGS[2][:-4], "base(L, f)"),
    ("base_M", MIDDLE, "base(M, m)"),
    ("base_M", "hierarchy", "base(M, f*)"),
    ("ISNs", "hierarchy", "ISNs(M, f*, S3)"),
)


@dataclasses.dataclass(frozen=True)
class Settings:
    """What a run of the recipe is given.

    data_dir: the URL lists, published meta CSVs and mp16_partitions/ (docs/reproduce.md lists them).
    work_dir: where records, models, evaluations and the stage manifests go.
    gin_files / gin_params: added to every training stage after the recipe's own (tiny runs, a
      cluster's batch size); train_flags / download_flags / records_flags / evaluate_flags: added to
      those commands (--strategy=mirrored, --processes=16, ...).
    regenerate_partitionings: make the partitionings anew from the downloaded MP-16 photos (§3.1)
      instead of using the published ones.
    """
    data_dir: str
    work_dir: str
    gin_files: tuple = ()
    gin_params: tuple = ()
    train_flags: tuple = ()
    download_flags: tuple = ()
    records_flags: tuple = ()
    evaluate_flags: tuple = ()
    regenerate_partitionings: bool = False

    def data(self, *parts) -> str:
        return os.path.join(self.data_dir, *parts)

    def work(self, *parts) -> str:
        return os.path.join(self.work_dir, *parts)


@dataclasses.dataclass(frozen=True)
class Stage:
    """One step of the recipe: one command.

    name: its manifest is <work_dir>/stages/<name>.json.
    title: what it does, printed above its command.
    argv: the command after `python` (`-m geoest.train ...`).
    inputs: files its outputs depend on besides the command line (their digests are recorded).
    outputs: files that exist once it has run to its end.
    """
    name: str
    title: str
    argv: tuple
    inputs: tuple
    outputs: tuple


def records_marker(settings: Settings, data_set: DataSet) -> str:
    """The file that says a set's records are complete: download.json of `geoest.download`, or the
    build log of geoest.build_tfrecords for a set given as a folder of photos."""
    if from_photos_folder(settings, data_set):
        return settings.work("records", data_set.name, f"{data_set.prefix}-build.jsonl")
    return settings.work("records", data_set.name, "download.json")


def from_photos_folder(settings: Settings, data_set: DataSet) -> bool:
    """A set whose data dir holds a folder of its photos (data_dir/<name>/) and no URL list."""
    return (not os.path.exists(settings.data(data_set.urls))) and os.path.isdir(settings.data(data_set.name))


def records_pattern(settings: Settings, data_set: DataSet) -> str:
    return settings.work("records", data_set.name, f"{data_set.prefix}-*.tfrecord")


def used_meta(settings: Settings, data_set: DataSet) -> str:
    """The meta rows of the photos a set's records hold (--write_meta), else its published meta."""
    if from_photos_folder(settings, data_set):
        return settings.data(data_set.meta)
    return settings.work("meta", data_set.meta)


def records_stage(settings: Settings, data_set: DataSet) -> Stage:
    """Photos -> geoest records for one data set, counted (download.json, missing.csv)."""
    out = settings.work("records", data_set.name)
    if from_photos_folder(settings, data_set):
        argv = ("-m", "geoest.build_tfrecords", f"--images_dir={settings.data(data_set.name)}",
                f"--meta_csv={settings.data(data_set.meta)}", f"--output_dir={out}", f"--prefix={data_set.prefix}",
                *settings.records_flags)
        return Stage(f"records_{data_set.name}", f"records: {data_set.what}, from its folder of photos", argv,
                     (settings.data(data_set.meta),), (records_marker(settings, data_set),))
    argv = ("-m", "geoest.download", f"--urls_csv={settings.data(data_set.urls)}",
            f"--meta_csv={settings.data(data_set.meta)}", f"--output_dir={out}", f"--prefix={data_set.prefix}",
            f"--write_meta={used_meta(settings, data_set)}", *settings.download_flags)
    return Stage(f"download_{data_set.name}", f"photos -> records: {data_set.what}", argv,
                 (settings.data(data_set.urls), settings.data(data_set.meta)),
                 (records_marker(settings, data_set), used_meta(settings, data_set)))


def partitionings_dir(settings: Settings) -> str:
    if settings.regenerate_partitionings:
        return settings.work("partitionings")
    return settings.data(PARTITIONINGS_FOLDER)


def partitioning_stages(settings: Settings) -> list:
    """§3.1: nothing to run for the published partitionings; with `regenerate_partitionings`, one
    geoest.create_partitioning per tau_max on the MP-16 photos downloaded."""
    if not settings.regenerate_partitionings:
        return []
    meta = used_meta(settings, TRAINING)
    return [Stage(f"partitioning_{lo}_{hi}", f"§3.1 partitioning tau_min {lo}, tau_max {hi} (regenerated)",
                  ("-m", "geoest.create_partitioning", f"--meta_csv={meta}", f"--tau_min={lo}", f"--tau_max={hi}",
                   f"--output={os.path.join(partitionings_dir(settings), name)}"),
                  (meta,), (os.path.join(partitionings_dir(settings), name),))
            for (lo, hi), name in zip(TAUS, PARTITIONINGS)]


def _train_stage(settings: Settings, name: str, title: str, gin_files, bindings, start_from=None) -> Stage:
    """One `python -m geoest.train` on MP-16's records, validated on YFCC-25600's."""
    parts = tuple(os.path.join(partitionings_dir(settings), p) for p in PARTITIONINGS)
    data = (f"PARTITIONINGS_DIR='{partitionings_dir(settings)}'",
            f"TRAIN_FILES='{records_pattern(settings, TRAINING)}'",
            f"VALIDATION_FILES='{records_pattern(settings, VALIDATION)}'")
    model_dir = settings.work("models", name)
    argv = ("-m", "geoest.train", *(f"--gin_file={f}" for f in (*gin_files, *settings.gin_files)),
            f"--model_dir={model_dir}",
            *(f"--gin_param={p}" for p in (*data, *bindings, *settings.gin_params)), *settings.train_flags)
    inputs = (*parts, records_marker(settings, TRAINING), records_marker(settings, VALIDATION))
    if start_from:
        inputs += (settings.work("models", start_from, "best.keras"),)
    return Stage(f"train_{name}", title, argv, inputs, (os.path.join(model_dir, "best.keras"),))


def training_stages(settings: Settings) -> list:
    """§4 for every model of Table 6: 15 epochs from ImageNet, then the fine-tuning stage; §3.3 ISNs
    from base(M)'s 15-epoch model with that same stage."""
    stages = []
    for variant in BASELINES:
        stages.append(_train_stage(settings, variant, f"§4 training {variant}: 15 epochs from ImageNet",
                                   [f"{variant}.gin"], []))
        stages.append(_train_stage(settings, f"{variant}_ft", f"§4 fine-tuning {variant}: lr 0.001, <= 5 epochs",
                                   [f"{variant}.gin", "finetune.gin"],
                                   [f"FINETUNE_FROM='{settings.work('models', variant)}'"], start_from=variant))
    for concept in CONCEPTS:
        stages.append(_train_stage(settings, f"isn_{concept}", f"§3.3 ISN {concept}: the fine-tuning stage of "
                                   f"{ISN_FROM}'s 15-epoch model on {concept} photos (p > tau_S = 0.3)",
                                   [f"isn_{concept}.gin"], [f"BASE_M_DIR='{settings.work('models', ISN_FROM)}'"],
                                   start_from=ISN_FROM))
    return stages


def evaluated_models(settings: Settings) -> dict:
    """{method name: model dir, with ":geometric" for base-vgg_c} of each evaluate run (Table 6 rows)."""
    tuned = lambda variant: settings.work("models", f"{variant}_ft")  # noqa: E731
    return {"base_vgg_c": f"{tuned('base_vgg_L_m')}:{GEOMETRIC}", "base_vgg": tuned("base_vgg_L_m"),
            **{v: tuned(v) for v in BASELINES if v != "base_vgg_L_m"}}


def evaluation_dir(settings: Settings, test_set: DataSet) -> str:
    return settings.work("eval", test_set.name)


def evaluation_stages(settings: Settings) -> list:
    """Table 6 on each test set: every model and the ISNs in one run, the paper's rows beside."""
    models = evaluated_models(settings)
    isns = ",".join(f"{c}={settings.work('models', f'isn_{c}')}" for c in CONCEPTS)
    model_files = tuple(os.path.join(d.rsplit(":" + GEOMETRIC, 1)[0], "best.keras") for d in models.values())
    model_files += tuple(settings.work("models", f"isn_{c}", "best.keras") for c in CONCEPTS)
    return [Stage(f"evaluate_{t.name}", f"Table 6 ({HALVES[t.name]}) on {t.what}", (
        "-m", "geoest.evaluate", *(f"--model_dir={name}={path}" for name, path in models.items()),
        f"--isn_dirs={isns}", f"--test_records={records_pattern(settings, t)}",
        f"--output_dir={evaluation_dir(settings, t)}", f"--reference={t.name}", *settings.evaluate_flags),
        tuple(dict.fromkeys(model_files)) + (records_marker(settings, t),),
        (os.path.join(evaluation_dir(settings, t), "summary.json"),)) for t in TEST_SETS]


def paper_recipe(settings: Settings) -> list:
    """Every stage of the recipe, in the order they run."""
    return [*(records_stage(settings, d) for d in DATA_SETS), *partitioning_stages(settings),
            *training_stages(settings), *evaluation_stages(settings)]
