"""§3.2: the Places365 ResNet-152 Caffe release converted into a Keras scene classifier.

`convert` turns the release (its ``.prototxt`` and ``.caffemodel``) into the Keras model of
`geoest.scene.caffe`, saved as one ``.keras`` file with a manifest beside it
(``resnet152_places365.keras.json``: digests of the two Caffe files and of the weights, the
preprocessing); `fetch_release` downloads the two files, only when asked (``--download``), and
`check_release_files` tells the published files from others.
"""
import json
import pathlib
import time

from geoest.errors import InputError
from geoest.files import atomic_path, check_output, digest, manifest_path, write_text
from geoest.scene.caffe import CAFFE_IMAGENET, Preprocessing, build_model, read_blobs, weights_digest
from geoest.scene.places365 import download_file
from geoest.scene.prototxt import check_resnet152_places365, read_prototxt

PROTOTXT_FILE = "deploy_resnet152_places365.prototxt"
CAFFEMODEL_FILE = "resnet152_places365.caffemodel"
# The network definition from the CSAILVision/places365 repository, the weights from the group's
# model page (both linked from that repository's README).
PROTOTXT_URL = "https://raw.githubusercontent.com/CSAILVision/places365/master/" + PROTOTXT_FILE
CAFFEMODEL_URL = "http://places2.csail.mit.edu/models_places365/" + CAFFEMODEL_FILE
PROTOTXT_SHA256 = "f99e87362b245faa4a3514be4af089bba60d1f6e711f396e8a7bed86e0fdc893"   # the published file
# Floats the Places365 ResNet-152 prototxt gives its 670 layers (weights, BatchNorm statistics, Scale, fc365):
# a caffemodel of fewer bytes than 4 per float is cut short.
RESNET152_FLOATS = 59_043_272


def file_sha256(path) -> str:
    """sha256 hex digest of a file, read in 1 MiB chunks."""
    with open(path, "rb") as f:
        return digest(iter(lambda: f.read(1 << 20), b""))


def convert(prototxt, caffemodel, output, *, places365: bool = True,
            preprocessing: Preprocessing = CAFFE_IMAGENET, overwrite: bool = False) -> dict:
    """§3.2: converts a Caffe release into a Keras scene classifier (``.keras``) and its manifest.

    Args:
      prototxt: the deploy network definition.
      caffemodel: its weights.
      output: the ``.keras`` file to write, whole or not at all; the manifest goes beside it
        (`geoest.files.manifest_path`).
      places365: require the published Places365 ResNet-152 definition (`check_resnet152_places365`).
      preprocessing: what the network's input blob holds (`CAFFE_IMAGENET` for the release).
      overwrite: replace an existing `output` that no conversion wrote (one it wrote is replaced).
    Returns:
      The manifest written: the two files' sha256, the Keras weights' digest
      (`weights_digest`), the input size and the preprocessing.
    Raises:
      InputError: a bad prototxt or caffemodel (naming the file and the first layer that does not
        match), or an output that is no ``.keras`` file name, is an input, or is a file no
        conversion wrote (without `overwrite`).
    """

    started = time.perf_counter()
    absent = [str(p) for p in (prototxt, caffemodel) if not pathlib.Path(p).is_file()]
    if absent:
        raise InputError(f"no such file: {', '.join(absent)}; put the release's {PROTOTXT_FILE} and "
                         f"{CAFFEMODEL_FILE} there, or ask to download them (--download)")
    output = check_output(output, inputs=[prototxt, caffemodel], flag="--output")
    if output.suffix != ".keras":
        raise InputError(f"--output={output}: expected a .keras file name")
    if output.exists() and not overwrite and not _converted(output):
        raise InputError(f"{output} exists and was not written by a conversion; pass --overwrite to replace "
                         "it, or write elsewhere")
    net = read_prototxt(prototxt)
    if places365:
        check_resnet152_places365(net)
    blobs = read_blobs(net, caffemodel)
    model = build_model(net, blobs, preprocessing, caffemodel=caffemodel)
    manifest = {"model": f"{net.name} converted from Caffe by geoest.scene.caffe",
                "prototxt": {"file": pathlib.Path(prototxt).name, "sha256": file_sha256(prototxt)},
                "caffemodel": {"file": pathlib.Path(caffemodel).name, "sha256": file_sha256(caffemodel)},
                "weights_sha256": weights_digest(model), "image_size": net.input_shape[1],
                "preprocessing": preprocessing.manifest()}
    with atomic_path(output) as tmp:
        model.save(tmp)
        write_text(manifest_path(output), json.dumps(manifest, indent=1) + "\n")
    manifest["seconds"] = time.perf_counter() - started
    return manifest


def _converted(output: pathlib.Path) -> bool:
    """Whether `output` has the manifest `convert` writes beside it."""
    try:
        return "weights_sha256" in json.loads(manifest_path(output).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False


def fetch_release(directory, *, prototxt_url: str = PROTOTXT_URL, caffemodel_url: str = CAFFEMODEL_URL):
    """Downloads the two files of the Caffe release into `directory` (files already there are kept).

    Only called on explicit request (``--download``). The prototxt must be the published one
    (`PROTOTXT_SHA256`); the caffemodel at least as large as the network's weights.

    Returns:
      (prototxt, caffemodel) paths.
    Raises:
      InputError: one line naming both files, where they come from and where to put them, when a
        download fails (offline, say) or a file is not the release's.
    """

    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    prototxt, caffemodel = directory / PROTOTXT_FILE, directory / CAFFEMODEL_FILE
    fetched = []
    try:
        for url, target in ((prototxt_url, prototxt), (caffemodel_url, caffemodel)):
            if not target.exists():
                download_file(url, target)
                fetched.append(target)
        check_release_files(prototxt, caffemodel)
    except InputError as e:
        for path in fetched:            # not the release's: fetched again next time
            path.unlink(missing_ok=True)
        reason = e.__cause__ if isinstance(e.__cause__, OSError) else e
        raise InputError(f"could not fetch the Places365 ResNet-152 ({reason}); put {PROTOTXT_FILE} "
                         f"({prototxt_url}) and {CAFFEMODEL_FILE} ({caffemodel_url}) into {directory} "
                         "yourself") from e
    return prototxt, caffemodel


def check_release_files(prototxt, caffemodel) -> None:
    """InputError unless `prototxt` is the published definition and `caffemodel` is large enough."""
    prototxt, caffemodel = pathlib.Path(prototxt), pathlib.Path(caffemodel)
    if file_sha256(prototxt) != PROTOTXT_SHA256:
        raise InputError(f"{prototxt}: sha256 {file_sha256(prototxt)[:12]}... is not the published "
                         f"{PROTOTXT_FILE}'s {PROTOTXT_SHA256[:12]}...")
    size = caffemodel.stat().st_size
    if size < 4 * RESNET152_FLOATS:
        raise InputError(f"{caffemodel}: {size} bytes, fewer than the {4 * RESNET152_FLOATS} of the network's "
                         f"{RESNET152_FLOATS} float32 weights: a cut or foreign file")
