"""Loading a trained model from a `python -m geoest.train` model dir, with its partitionings.

A model's geo outputs are named after its partitionings (the CSV file stems, e.g.
"cells_50_1000"); Class2GPS needs those CSVs. They are taken from, in order: the paths given,
CSVs in the model dir (or its `partitionings/` folder), and the paths in the run's
`operative_config.gin`.
"""
import dataclasses
import pathlib
import re

from geoest.errors import InputError
from geoest.geo import read_partitionings
from geoest.heads import SCENE_HEAD, output_sizes

MODEL_FILES = ("best.keras", "model.keras", "final.keras")
OPERATIVE_CONFIG = "operative_config.gin"


@dataclasses.dataclass
class GeoModel:
    """A trained Keras model and the partitionings of its geo heads (coarse to fine)."""
    model: object
    partitionings: list
    path: pathlib.Path

    @property
    def has_scene_head(self) -> bool:
        return SCENE_HEAD in output_sizes(self.model)


def model_file(model_dir) -> pathlib.Path:
    """The best-on-validation model file of a model dir (or a .keras file given directly)."""
    path = pathlib.Path(model_dir)
    if path.is_file() and path.suffix == ".keras":
        return path
    if not path.is_dir():
        raise InputError(f"model dir {path} does not exist")
    for name in MODEL_FILES:
        if (path / name).is_file():
            return path / name
    found = sorted(path.glob("*.keras"))
    if len(found) == 1:
        return found[0]
    raise InputError(f"model dir {path} holds no model file ({' / '.join(MODEL_FILES)}); "
                     "train one with `python -m geoest.train --model_dir=...` first")


def load_keras_model(path):
    """Load a .keras file, with geoest's custom layers registered."""
    import keras

    try:
        import geoest.models  # noqa: F401  registers the custom objects of the geo models
    except ImportError:
        pass
    try:
        return keras.saving.load_model(path, compile=False)
    except (OSError, ValueError) as error:
        raise InputError(f"cannot load model {path}: {error}") from error


def _candidate_csvs(model_dir: pathlib.Path):
    yield from sorted(model_dir.glob("*.csv"))
    yield from sorted((model_dir / "partitionings").glob("*.csv"))
    config = model_dir / OPERATIVE_CONFIG
    if config.is_file():
        for match in re.findall(r"""['"]([^'"]+\.csv)['"]""", config.read_text(encoding="utf-8")):
            path = pathlib.Path(match)
            yield path if path.is_absolute() or path.exists() else model_dir / path


def find_partitionings(names, model_dir, csv_paths=()):
    """The partitioning of each geo output name, from `csv_paths` or the model dir.

    Returns:
      list of `geoest.geo.Partitioning`, one per name, in `names` order.
    """
    model_dir = pathlib.Path(model_dir)
    found = {}
    candidates = [pathlib.Path(p) for p in csv_paths] or list(_candidate_csvs(model_dir if model_dir.is_dir()
                                                                              else model_dir.parent))
    for path in candidates:
        if path.stem in names and path.stem not in found and path.is_file():
            found[path.stem] = path
    missing = [n for n in names if n not in found]
    if missing:
        where = ", ".join(map(str, csv_paths)) if csv_paths else f"{model_dir} or its {OPERATIVE_CONFIG}"
        raise InputError(f"no partitioning CSV for the model's heads {missing} in {where}; pass the CSVs "
                         f"(named <head>.csv, e.g. {missing[0]}.csv) with --partitionings")
    return read_partitionings([found[n] for n in names])


def load_geo_model(model_dir, csv_paths=()) -> GeoModel:
    """Load a model dir's best model and the partitionings of its geo heads.

    Args:
      model_dir: the `--model_dir` of a training run, or a .keras file.
      csv_paths: partitioning CSVs (file stem = head name); default: found in the model dir.
    """
    from geoest.models import require_uint8_images

    path = model_file(model_dir)
    model = load_keras_model(path)
    require_uint8_images(model, path)
    sizes = output_sizes(model)
    partitionings = find_partitionings([n for n in sizes if n != SCENE_HEAD], path.parent, csv_paths)
    for p in partitionings:
        if sizes[p.name] != len(p):
            raise InputError(f"model {path} head {p.name!r} has {sizes[p.name]} classes but partitioning "
                             f"{p.name!r} has {len(p)} cells")
    return GeoModel(model=model, partitionings=partitionings, path=path)
