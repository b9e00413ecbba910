r"""Converts the paper's scene classifier, the Places365 ResNet-152 Caffe release, into a Keras model (§3.2).

    python -m geoest.convert_places365 [--download] \
        [--prototxt=deploy_resnet152_places365.prototxt --caffemodel=resnet152_places365.caffemodel] \
        [--output=~/.cache/geoest/places365/resnet152_places365.keras]

The Keras model is built layer by layer from the prototxt and filled with the caffemodel's weights
(read with OpenCV: pip install 'geoest[scene]'); it takes uint8 RGB photos and does the release's
preprocessing (BGR, minus the ImageNet channel means) itself. OUTPUT.json records the digests of both
files and of the weights; an existing --output that no conversion wrote is kept unless --overwrite.
python -m geoest.label_scenes, and predict / evaluate with --scene_model=places365,
use the model in the default place. Nothing is downloaded without --download.
"""
from absl import flags

from geoest import cli
from geoest.scene import conversion, labeler, places365

flags.DEFINE_string("prototxt", None, f"The network definition. Default: {conversion.PROTOTXT_FILE} in --places365_dir.")
flags.DEFINE_string("caffemodel", None, f"The weights. Default: {conversion.CAFFEMODEL_FILE} in --places365_dir.")
flags.DEFINE_string("output", None, f"The .keras file to write. Default: {labeler.WEIGHTS_FILE} in --places365_dir.")
flags.DEFINE_string("places365_dir", None, f"Folder of the release files. Default: {places365.default_cache_dir()}")
flags.DEFINE_boolean("download", False, "Fetch the two files of the release from the CSAILVision sources into "
                     "--places365_dir if they are not there.")
flags.DEFINE_string("prototxt_url", conversion.PROTOTXT_URL, "Where --download fetches the prototxt.")
flags.DEFINE_string("caffemodel_url", conversion.CAFFEMODEL_URL, "Where --download fetches the caffemodel.")
flags.DEFINE_boolean("overwrite", False, "Replace an --output that no conversion wrote (instead of refusing).")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    directory = FLAGS.places365_dir or places365.default_cache_dir()
    if FLAGS.download:
        conversion.fetch_release(directory, prototxt_url=FLAGS.prototxt_url, caffemodel_url=FLAGS.caffemodel_url)
    prototxt = FLAGS.prototxt or f"{directory}/{conversion.PROTOTXT_FILE}"
    caffemodel = FLAGS.caffemodel or f"{directory}/{conversion.CAFFEMODEL_FILE}"
    output = FLAGS.output or labeler.default_weights_path(directory)
    manifest = conversion.convert(prototxt, caffemodel, output, overwrite=FLAGS.overwrite)
    print(f"{output}: {manifest['model']} in {manifest['seconds']:.1f} s (weights sha256 "
          f"{manifest['weights_sha256'][:12]}...)")


if __name__ == "__main__":
    cli.run(main)
