"""TFDS builders for the paper's photo sets (manual download): mp16, im2gps, im2gps3k, yfcc25600.

    tfds build mp16 --imports=geoest.data.datasets --manual_dir=DIR [--data_dir=...]

`DIR` holds the meta CSV under its published name (e.g. `mp16_places365.csv`) and the photos
under `DIR/images/`, at the paths the CSV's IMG_IDs give. Photos are prepared exactly as
`tools/build_tfrecords.py` does (shorter side 320 px, JPEG), and the features serialize under
the same keys as `geoest.data.records` (`image/encoded`, `image/id`, `image/latitude`,
`image/longitude`, `scene/probs365`, `scene/probs3`, `scene/label_s3|s16|s365`; unknown
probabilities are NaN, unknown labels -1), so
`tfds.load(name, decoders={"image": {"encoded": tfds.decode.SkipDecoding()}})` gives the same
examples as the records, and the pipelines in `geoest.data.pipeline` read the prepared files.
Photos that are missing (no longer downloadable from Flickr) or unreadable are skipped,
counted and logged with their IMG_ID.
"""
import collections
import logging
import pathlib

import numpy as np
import tensorflow_datasets as tfds

from geoest.data import build, records
from geoest.data import meta_csv as meta_lib
from geoest.errors import InputError

_HOMEPAGE = "https://github.com/TIBHannover/GeoEstimation"
_CITATION = """@inproceedings{muller2018geolocation,
  title={Geolocation Estimation of Photos using a Hierarchical Model and Scene Classification},
  author={M{\\"u}ller-Budack, Eric and Pustu-Iren, Kader and Ewerth, Ralph},
  booktitle={European Conference on Computer Vision (ECCV)},
  pages={575--592},
  year={2018}
}"""
_LAYOUT = """
Place in the manual_dir:
  {meta_csv}          the meta CSV (IMG_ID,...,LAT,LON,... ; scene columns optional)
  images/             the photos, at the relative paths given by IMG_ID
"""


def _nan(size):
    return np.full(size, np.nan, np.float32)


class _GeoPhotos(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Photos with their coordinates and scene probabilities, one split."""

    VERSION = tfds.core.Version("1.1.0")
    RELEASE_NOTES = {"1.0.0": "Photos shrunk to a 320 px shorter side, JPEG.",
                     "1.1.0": "The meta CSV's scene labels (S3, S16, S365; -1 unknown)."}
    META_CSV = ""        # file name in manual_dir
    SPLIT = ""
    DESCRIPTION = ""
    SHORTER_SIDE = build.SHORTER_SIDE
    WORKERS = None       # processes preparing photos; default all CPU cores

    def _info(self) -> tfds.core.DatasetInfo:
        # Nested names serialize as "image/encoded", ...: the keys of geoest.data.records.
        return self.dataset_info_from_configs(
            description=self.DESCRIPTION,
            features=tfds.features.FeaturesDict({
                "image": {
                    "encoded": tfds.features.Image(shape=(None, None, 3),
                                                   encoding_format="jpeg"),
                    "id": tfds.features.Text(),
                    "latitude": tfds.features.Scalar(np.float32),
                    "longitude": tfds.features.Scalar(np.float32),
                },
                "scene": {
                    "probs365": tfds.features.Tensor(shape=(records.NUM_S365,),
                                                     dtype=np.float32),
                    "probs3": tfds.features.Tensor(shape=(records.NUM_S3,), dtype=np.float32),
                    **{key.split("/")[1]: tfds.features.Scalar(np.int64)
                       for key in records.SCENE_LABELS.values()},
                },
            }),
            homepage=_HOMEPAGE,
            citation=_CITATION,
        )

    def _split_generators(self, dl_manager):
        manual_dir = pathlib.Path(dl_manager.manual_dir)
        meta_csv, images_dir = manual_dir / self.META_CSV, manual_dir / "images"
        if not meta_csv.is_file() or not images_dir.is_dir():
            raise InputError(f"{self.name}: expected {meta_csv} and the folder {images_dir}.\n"
                             + self.MANUAL_DOWNLOAD_INSTRUCTIONS)
        return {self.SPLIT: self._generate_examples(images_dir, meta_csv)}

    def _generate_examples(self, images_dir, meta_csv):
        meta = meta_lib.read_meta_csv(meta_csv)
        paths, outside = meta.image_paths(images_dir)
        links = (str(images_dir), False)           # a link out of images/ is skipped and named
        tasks = [(i, path, self.SHORTER_SIDE, links) for i, path in paths.items()]
        skipped = collections.Counter()
        for i, reason in outside.items():          # never opened
            logging.warning("%s: skipped %s: %s", self.name, meta.ids[i], reason)
            skipped[reason] += 1
        # Threads, not processes: TFDS may run inside a process that already holds TF and test
        # threads, where forking is unsafe; PIL releases the GIL while decoding and resizing.
        for i, jpeg, reason, _ in build.thread_map(build.prepare_task, tasks, self.WORKERS):
            if jpeg is None:
                logging.warning("%s: skipped %s: %s", self.name, meta.ids[i], reason)
                skipped[build.reason_kind(reason)] += 1
                continue
            yield meta.ids[i], {
                "image": {"encoded": jpeg, "id": meta.ids[i],
                          "latitude": meta.lat_deg[i], "longitude": meta.lon_deg[i]},
                "scene": {
                    "probs365": _nan(records.NUM_S365) if meta.probs365 is None
                    else meta.probs365[i],
                    "probs3": _nan(records.NUM_S3) if meta.probs3 is None else meta.probs3[i],
                    **{key.split("/")[1]: -1 if meta.scene_labels is None else meta.scene_labels[i, k]
                       for k, key in enumerate(records.SCENE_LABELS.values())},
                },
            }
        logging.info("%s: %d of %d photos prepared; skipped %s", self.name,
                     len(meta) - sum(skipped.values()), len(meta), dict(skipped) or "none")


class Mp16(_GeoPhotos):
    """MP-16: 4.7 M geotagged Flickr photos (YFCC100M), the paper's training set (§4)."""

    name = "mp16"
    META_CSV = "mp16_places365.csv"
    SPLIT = "train"
    DESCRIPTION = ("MP-16 (MediaEval Placing Task 2016): 4,723,695 geotagged Flickr photos "
                   "from YFCC100M, the training set of Müller-Budack et al. (ECCV 2018).")
    MANUAL_DOWNLOAD_INSTRUCTIONS = _LAYOUT.format(meta_csv=META_CSV) + """
Meta CSV: https://github.com/TIBHannover/GeoEstimation/releases/download/v1.0/mp16_places365.csv
Photos: the Flickr URLs in
https://github.com/TIBHannover/GeoEstimation/releases/download/v1.0/mp16_urls.csv (or the
YFCC100M copy at http://multimedia-commons.s3-website-us-west-2.amazonaws.com/), saved as
images/<IMG_ID>. Photos no longer downloadable are skipped (counted and logged); the
partitionings in data/mp16_partitions keep the paper's cells whatever is missing.
"""


class Im2gps(_GeoPhotos):
    """Im2GPS: 237 test photos (Hays & Efros, 2008)."""

    name = "im2gps"
    META_CSV = "im2gps_places365.csv"
    SPLIT = "test"
    DESCRIPTION = "Im2GPS test set: 237 geotagged photos (Hays and Efros, CVPR 2008)."
    MANUAL_DOWNLOAD_INSTRUCTIONS = _LAYOUT.format(meta_csv=META_CSV) + """
Meta CSV: https://github.com/TIBHannover/GeoEstimation/blob/original_tf/meta/im2gps_places365.csv
Photos: the Im2GPS test set from http://graphics.cs.cmu.edu/projects/im2gps/ , unpacked into
images/.
"""


class Im2gps3k(_GeoPhotos):
    """Im2GPS3k: 2,997 test photos (Vo et al., 2017)."""

    name = "im2gps3k"
    META_CSV = "im2gps3k_places365.csv"
    SPLIT = "test"
    DESCRIPTION = "Im2GPS3k test set: 2,997 geotagged photos (Vo, Jacobs and Hays, ICCV 2017)."
    MANUAL_DOWNLOAD_INSTRUCTIONS = _LAYOUT.format(meta_csv=META_CSV) + """
Meta CSV: https://github.com/TIBHannover/GeoEstimation/blob/original_tf/meta/im2gps3k_places365.csv
Photos: im2gps3ktest.zip, linked from https://github.com/lugiavn/revisiting-im2gps , unpacked
into images/.
"""


class Yfcc25600(_GeoPhotos):
    """YFCC25600: the paper's 25,600-photo validation set (§4)."""

    name = "yfcc25600"
    META_CSV = "yfcc25600_places365.csv"
    SPLIT = "validation"
    DESCRIPTION = "25,600 YFCC100M photos, the validation set of Müller-Budack et al. (§4)."
    MANUAL_DOWNLOAD_INSTRUCTIONS = _LAYOUT.format(meta_csv=META_CSV) + """
Meta CSV: https://github.com/TIBHannover/GeoEstimation/releases/download/pytorch/yfcc25600_places365.csv
Photos: the Flickr URLs in
https://github.com/TIBHannover/GeoEstimation/releases/download/pytorch/yfcc25600_urls.csv ,
saved as images/<IMG_ID>. Photos no longer downloadable are skipped (counted and logged).
"""
