"""Feature extractors for §3.3: a uint8 image to the global-pooling feature vector.

§4 trains ResNet-101 (the v2 variant of the paper's original TensorFlow implementation); Table 6
compares against VGG16 with its fully connected fc6 / fc7 (base-vgg, as in Im2GPS). Every
backbone takes uint8 RGB images in [0, 255] (what `geoest.data.pipeline` yields: a quarter of float32's bytes on the way to the accelerator) and
scales them, as its first layer and in the compute dtype, to what its ImageNet weights expect:
[-1, 1] for the ResNet v2 family, Caffe's BGR minus the channel means for VGG16, [0, 255] for
EfficientNetV2 and ConvNeXt (which normalise inside).

    BACKBONES["resnet101v2"](images, weights=None)  # uint8 [batch, S, S, 3] -> features [batch, 2048]
"""
import os

import keras

from geoest.errors import InputError

BACKBONES = {}

# §4 starts from ImageNet: keras.applications' weights without the classifier, as Keras fetches them
# into its cache ($KERAS_HOME or ~/.keras, folder models/).
_KERAS_APPLICATIONS = "https://storage.googleapis.com/tensorflow/keras-applications/"
FROM_SCRATCH = """--gin_param='IMAGENET_WEIGHTS=None'"""


def _register(name):
    def decorate(fn):
        BACKBONES[name] = fn
        return fn
    return decorate


SYMMETRIC, CAFFE, RAW = "symmetric", "caffe", "raw"   # input conventions of `ScaleImages`


@keras.saving.register_keras_serializable(package="geoest")
class ScaleImages(keras.layers.Layer):
    """uint8 RGB images [..., 3] in [0, 255] to a backbone's input, in the layer's compute dtype.

    convention: "symmetric" x / 127.5 - 1, in [-1, 1] (ResNet v2, the demo and tiny CNNs);
      "caffe" BGR in [0, 255] minus the ImageNet channel means (VGG16's Caffe weights);
      "raw" [0, 255] as they are (EfficientNetV2, ConvNeXt normalise inside).
    Under mixed precision the cast and the scaling run in float16 / bfloat16, as the first
    convolution would cast to anyway.
    """

    _BGR_MEAN = (103.939, 116.779, 123.68)
    CONVENTIONS = (SYMMETRIC, CAFFE, RAW)

    def __init__(self, convention: str = SYMMETRIC, **kwargs):
        super().__init__(**kwargs)
        if convention not in self.CONVENTIONS:
            raise InputError(f"image convention {convention!r}: expected one of {self.CONVENTIONS}")
        self.convention = convention

    def call(self, images):
        x = keras.ops.cast(images, self.compute_dtype)
        if self.convention == SYMMETRIC:
            return x / 127.5 - 1.0
        if self.convention == CAFFE:
            return keras.ops.flip(x, axis=-1) - keras.ops.convert_to_tensor(self._BGR_MEAN, dtype=self.compute_dtype)
        return x

    def compute_output_spec(self, images):
        return keras.KerasTensor(images.shape, dtype=self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "convention": self.convention}


def scale_images(images, convention: str):
    """The first layer of a backbone: uint8 images to its `convention` (see `ScaleImages`)."""
    return ScaleImages(convention, name="scale_images")(images)


def imagenet_weights(backbone: str) -> str:
    """The local file of a backbone's ImageNet weights (§4): from Keras' cache, fetched into it if absent.

    Raises:
      InputError: the backbone has none, or the file is not cached and cannot be fetched (offline);
        the message names the file to place, where, and the gin parameter for random weights.
    """
    if backbone not in IMAGENET_FILES:
        raise InputError(f"backbone {backbone!r} has no ImageNet weights; train it with {FROM_SCRATCH}")
    cache = os.path.join(os.path.expanduser(os.environ.get("KERAS_HOME", "~/.keras")), "models")
    file_name = os.path.basename(IMAGENET_FILES[backbone])
    url = _KERAS_APPLICATIONS + IMAGENET_FILES[backbone]
    try:
        return keras.utils.get_file(file_name, url, cache_subdir="models", cache_dir=os.path.dirname(cache))
    except Exception as error:  # keras raises a bare Exception for a failed download
        reason = str(error).rsplit(" -- ", 1)[-1]
        raise InputError(f"ImageNet weights of backbone {backbone!r} (§4) are not in Keras' cache and could "
                         f"not be fetched ({reason}): place {file_name} (from {url}) in {cache}/, or train from "
                         f"random weights with {FROM_SCRATCH}") from None


def _application(constructor, name, images, weights, **kwargs):
    """Runs a `keras.applications` constructor without its top; returns pooled features [batch, d].

    weights: None (random), "imagenet" (`imagenet_weights`) or the path of a local weights file.
    """
    base = constructor(include_top=False, weights=_weights_file(name, weights), input_shape=tuple(images.shape[1:]),
                       pooling="avg", **kwargs)
    return base(images)


def _weights_file(name: str, weights):
    """weights: None (random), "imagenet" (`imagenet_weights`) or the path of a local weights file."""
    if weights == "imagenet":
        return imagenet_weights(name)
    if weights is not None and not os.path.exists(weights):
        raise InputError(f"backbone {name!r}: weights file {weights!r} does not exist; expected None, "
                         "'imagenet' or the path of a local weights file (.weights.h5 / .h5)")
    return weights


def _keras_backbone(name: str, constructor: str, convention: str):
    def backbone(images, weights=None):
        return _application(getattr(keras.applications, constructor), name, scale_images(images, convention), weights)
    backbone.__name__ = backbone.__qualname__ = name
    return backbone


# The keras.applications backbones: name -> (constructor, input convention of `ScaleImages`, ImageNet weights file).
KERAS_BACKBONES = {
    # §4: "a ResNet architecture with 101 convolutional layers" (pre-activation v2, inputs in [-1, 1]).
    "resnet101v2": ("ResNet101V2", SYMMETRIC, "resnet/resnet101v2_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    "resnet50v2": ("ResNet50V2", SYMMETRIC, "resnet/resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    "resnet152v2": ("ResNet152V2", SYMMETRIC, "resnet/resnet152v2_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    # Stronger modern backbones (not in the paper); they normalise [0, 255] inputs themselves.
    "efficientnetv2s": ("EfficientNetV2S", RAW, "efficientnet_v2/efficientnetv2-s_notop.h5"),
    "convnext_tiny": ("ConvNeXtTiny", RAW, "convnext/convnext_tiny_notop.h5"),
}
IMAGENET_FILES = {name: weights_file for name, (_, _, weights_file) in KERAS_BACKBONES.items()}
for _name, (_constructor, _convention, _) in KERAS_BACKBONES.items():
    BACKBONES[_name] = _keras_backbone(_name, _constructor, _convention)
# §4.4, Table 6 base-vgg(L, m): "VGG16 [...] used in the Im2GPS approach", which keeps the fully
# connected fc6 and fc7 (4,096 each): Keras' VGG16 with its top, from ImageNet weights of the
# include_top model, ending at fc7 (the 1000-way ImageNet classifier dropped).
IMAGENET_FILES["vgg16"] = "vgg16/vgg16_weights_tf_dim_ordering_tf_kernels.h5"


@_register("vgg16")
def vgg16(images, weights=None):
    """VGG16 as in Im2GPS: 13 convolutions, then fc6 and fc7 (Keras' `fc1` / `fc2`, ReLU, 4,096 each).

    uint8 images [batch, S, S, 3] (Caffe's input convention) -> fc7 features float [batch, 4096].
    weights: None (random), "imagenet" (the include_top model's file, `imagenet_weights`) or the path
    of a local weights file of Keras' VGG16 with its top at the same input size.
    """
    full = keras.applications.VGG16(include_top=True, weights=_weights_file("vgg16", weights),
                                    input_shape=tuple(images.shape[1:]))
    base = keras.Model(full.inputs, full.get_layer("fc2").output, name="vgg16")
    return base(scale_images(images, CAFFE))


@_register("tiny")
def tiny(images, weights=None):
    """Two strided convolutions and global pooling: for tests and CPU smoke runs, never for results."""
    if weights is not None:
        raise InputError(f"backbone 'tiny' has no pretrained weights; got weights={weights!r}")
    x = keras.layers.Conv2D(16, 3, strides=2, activation="relu", name="tiny_conv1")(scale_images(images, SYMMETRIC))
    x = keras.layers.Conv2D(32, 3, strides=2, activation="relu", name="tiny_conv2")(x)
    return keras.layers.GlobalAveragePooling2D(name="tiny_pool")(x)
