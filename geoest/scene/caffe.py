"""§3.2: the paper's scene classifier from its Caffe release, as a Keras model built from the prototxt.

The Places365 ResNet-152 is published as a Caffe network definition (``deploy_*.prototxt``) and its
weights (``*.caffemodel``). `geoest.scene.prototxt.read_prototxt` reads the definition into its
layers; `read_blobs` reads every layer's weight arrays with OpenCV's Caffe importer
(``cv2.dnn.readNetFromCaffe``, the ``scene`` extra) and checks each against the shape the prototxt
gives it; `build_model` lays the layers out as a Keras functional
model, layer by layer, in the prototxt's order:

- Convolution (+ BatchNorm + Scale): one ``Conv2D``. Caffe splits batch normalisation into a
  BatchNorm layer holding [mean * f, variance * f, f] (f: its moving-average scale factor) and a
  Scale layer holding [gamma, beta]; both are folded into the convolution's kernel and bias.
  Caffe pads symmetrically (``ZeroPadding2D``, then a "valid" convolution).
- Pooling: Caffe rounds output sizes up (ceil mode); the missing bottom / right rows are zero
  padding, exact for MAX pooling of a ReLU's (non-negative) output. AVE pooling is taken only
  without padding.
- ReLU, Eltwise (SUM), InnerProduct (Caffe flattens channels first) and Softmax as they are.

The model takes uint8 RGB images [batch, S, S, 3] (the whole photo resized to S = 224 for the
release) and does the Caffe release's preprocessing in its first two layers: RGB -> BGR and minus
the ImageNet channel means (`Preprocessing`).

The release's files, their download and their conversion are `geoest.scene.conversion`.
"""
import dataclasses
import pathlib

import numpy as np

from geoest.errors import InputError
from geoest.files import digest
from geoest.scene.prototxt import CaffeNet, Layer

SUPPORTED = ("Convolution", "BatchNorm", "Scale", "ReLU", "Eltwise", "Pooling", "InnerProduct", "Softmax")
_BN_EPS = 1e-5                    # caffe.proto BatchNormParameter.eps default
_ELTWISE_SUM = "SUM"


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """What a Caffe network's input blob holds: float32 channels in `channel_order`, minus `mean`.

    The Places365 ResNet-152 release, like the ImageNet ResNets it was fine-tuned from, takes BGR
    pixels in [0, 255] minus the ImageNet channel means (B, G, R) (`CAFFE_IMAGENET`).
    """
    channel_order: str = "BGR"
    mean: tuple = (103.939, 116.779, 123.68)     # in channel_order

    def permutation(self) -> np.ndarray:
        """float32 [3, 3]: RGB pixel -> the network's channel order."""
        return np.eye(3, dtype=np.float32)[:, ["RGB".index(c) for c in self.channel_order]]

    def manifest(self) -> dict:
        return {"input": "uint8 RGB [batch, S, S, 3], the whole photo resized to S x S",
                "inside the model": f"RGB -> {self.channel_order}, minus the channel means",
                "channel_order": self.channel_order, "mean": list(self.mean)}


CAFFE_IMAGENET = Preprocessing()


# -- the caffemodel -------------------------------------------------------------------------------------
def read_blobs(net: CaffeNet, caffemodel) -> dict:
    """Every weight array of `net`'s layers from a ``.caffemodel``, read by OpenCV's Caffe importer.

    Returns:
      {layer name: [float32 arrays as Caffe stores them]}: Convolution [out, in, kh, kw] (+ bias
      [out]); BatchNorm [C], [C], [1] (mean * f, variance * f, f); Scale [C] (+ [C]); InnerProduct
      [out, in] (+ [out]); OpenCV returns 1-D blobs as [n, 1] or [1, n] (`build_model` reshapes
      each to the shape the prototxt gives it).
    Raises:
      InputError: the file is missing or is no Caffe model for this prototxt (an HTML page, a cut
        file), naming it.
    """
    try:
        import cv2
    except ImportError as e:
        raise InputError(f"reading {caffemodel} needs OpenCV's Caffe importer: pip install 'geoest[scene]' "
                         "(opencv-python-headless >= 4.8, < 5)") from e

    caffemodel = pathlib.Path(caffemodel)
    if not caffemodel.is_file():
        raise InputError(f"{caffemodel}: no such file")
    with open(caffemodel, "rb") as f:
        head = f.read(512).lstrip().lower()
    if head.startswith((b"<!doctype", b"<html", b"<?xml")) or b"<html" in head:
        raise InputError(f"{caffemodel}: an HTML page, not a caffemodel (a failed download?); fetch the "
                         "file again or put the real one there")
    try:
        cv_net = cv2.dnn.readNetFromCaffe(str(net.path), str(caffemodel))
    except cv2.error as e:
        reason = " ".join(str(e).split())[-200:]
        raise InputError(f"{caffemodel}: OpenCV cannot read it as the weights of {net.path.name} "
                         f"(a cut or foreign file?): {reason}") from e
    blobs = {}
    for layer in net.layers:
        if cv_net.getLayerId(layer.name) < 0:
            raise InputError(f"{caffemodel}: OpenCV finds no layer {layer.name!r} of {net.path.name}")
        arrays = cv_net.getLayer(layer.name).blobs
        blobs[layer.name] = [np.asarray(a, np.float32) for a in arrays]
    return blobs


def _check_blobs(layer: Layer, blobs: dict, expected: list, caffemodel) -> list:
    got = blobs.get(layer.name, [])
    shapes = [tuple(a.shape) for a in got]
    if len(got) != len(expected) or any(np.squeeze(np.empty(s)).shape != np.squeeze(np.empty(e)).shape
                                        for s, e in zip(shapes, expected)):
        raise InputError(f"{caffemodel}: layer {layer.name!r} ({layer.type}) holds blobs of shapes {shapes}; "
                         f"the prototxt makes them {[tuple(e) for e in expected]}")
    return [a.reshape(e) for a, e in zip(got, expected)]


def _caffe_pool_size(size: int, kernel: int, stride: int, pad: int) -> int:
    """Caffe's pooling output size (pooling_layer.cpp): rounded up, the last window starting inside
    the input or its top / left padding."""
    out = -(-(size + 2 * pad - kernel) // stride) + 1
    if pad and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def build_model(net: CaffeNet, blobs: dict, preprocessing: Preprocessing = CAFFE_IMAGENET, *,
                caffemodel="caffemodel", fold_scale: bool = True):
    """The Keras model of a Caffe network, layer by layer from its prototxt, filled with its weights.

    Args:
      net: the parsed prototxt (`read_prototxt`).
      blobs: {layer name: Caffe arrays} (`read_blobs`); each is checked against the shape the
        prototxt gives it.
      preprocessing: what the network's input blob holds; done inside the model.
      caffemodel: the weights' file, named in errors.
      fold_scale: fold each Scale layer into its convolution (False only to show that a conversion
        which leaves it out is caught).
    Returns:
      A keras.Model: uint8 RGB [batch, H, W, 3] -> the last layer's output (probabilities
      [batch, n] for a deploy net ending in Softmax).
    Raises:
      InputError: a layer type or setting the converter does not take, or a blob of the wrong shape,
        naming the layer.
    """
    import keras

    channels, height, width = net.input_shape
    images = keras.Input((height, width, channels), dtype="uint8", name="image")
    x = keras.layers.Rescaling(1.0, name="float_pixels")(images)
    to_net = keras.layers.Conv2D(channels, 1, name="caffe_input", trainable=False)
    x = to_net(x)
    to_net.set_weights([preprocessing.permutation()[None, None],
                        -np.asarray(preprocessing.mean, np.float32)])
    tensors = {net.input_name: x}
    nonnegative = set()             # blobs a ReLU wrote last
    layers = list(net.layers)
    i = 0
    while i < len(layers):
        layer = layers[i]
        where = f"{net.path}: layer {layer.name!r} ({layer.type})"
        if layer.type not in SUPPORTED:
            raise InputError(f"{where}: not a layer type the converter builds ({', '.join(SUPPORTED)})")
        missing = [b for b in layer.bottoms if b not in tensors]
        if missing or len(layer.tops) != 1:
            raise InputError(f"{where}: reads blobs {missing} that no earlier layer writes, or writes "
                             f"{len(layer.tops)} blobs")
        inputs = [tensors[b] for b in layer.bottoms]
        top = layer.tops[0]
        nonnegative.discard(top)
        if layer.type == "Convolution":
            following = layers[i + 1:i + 3]
            folded = (len(following) == 2 and [f.type for f in following] == ["BatchNorm", "Scale"]
                      and all(f.bottoms == (top,) and f.tops == (top,) for f in following))
            x = _convolution(layer, inputs[0], blobs, caffemodel, following if folded else (), fold_scale)
            i += 2 if folded else 0
        elif layer.type in ("BatchNorm", "Scale"):
            raise InputError(f"{where}: only a BatchNorm + Scale pair right after a convolution, on its "
                             "output, is converted (folded into it)")
        elif layer.type == "ReLU":
            if layer.param("relu_param", "negative_slope", 0) != 0:
                raise InputError(f"{where}: a leaky ReLU is not converted")
            x = keras.layers.ReLU(name=layer.name)(inputs[0])
            nonnegative.add(top)
        elif layer.type == "Eltwise":
            if layer.param("eltwise_param", "operation", _ELTWISE_SUM) != _ELTWISE_SUM \
                    or "coeff" in layer.params.get("eltwise_param", [{}])[0]:
                raise InputError(f"{where}: only an Eltwise SUM without coefficients is converted")
            x = keras.layers.Add(name=layer.name)(inputs)
        elif layer.type == "Pooling":
            x = _pooling(layer, inputs[0], layer.bottoms[0] in nonnegative, where)
        elif layer.type == "InnerProduct":
            x = _inner_product(layer, inputs[0], blobs, caffemodel)
        else:   # Softmax over the channels of a [batch, n] blob
            x = keras.layers.Softmax(name=layer.name)(inputs[0])
        tensors[top] = x
        i += 1
    return keras.Model(images, x, name=net.name.replace("-", "_").replace(" ", "_") or "caffe_net")


def _convolution(layer: Layer, x, blobs: dict, caffemodel, batch_norm, fold_scale: bool):
    """Convolution, with a following BatchNorm + Scale folded in: kernel * m, (bias - mean) * m + beta
    with m = gamma / sqrt(variance + eps), mean and variance being Caffe's blobs divided by its
    moving-average scale factor."""
    import keras

    n = int(layer.param("convolution_param", "num_output"))
    kernel, stride, pad = (layer.pair("convolution_param", f, d) for f, d in (("kernel", 0), ("stride", 1), ("pad", 0)))
    bias_term = layer.param("convolution_param", "bias_term", "true") in ("true", 1, True)
    if layer.param("convolution_param", "group", 1) != 1 or layer.pair("convolution_param", "dilation", 1) != (1, 1):
        raise InputError(f"{layer.name!r} (Convolution): grouped or dilated convolutions are not converted")
    c_in = int(x.shape[-1])
    expected = [(n, c_in) + kernel] + ([(n,)] if bias_term else [])
    arrays = _check_blobs(layer, blobs, expected, caffemodel)
    w = arrays[0].astype(np.float64).transpose(2, 3, 1, 0)          # [out, in, kh, kw] -> [kh, kw, in, out]
    b = arrays[1].astype(np.float64) if bias_term else np.zeros(n)
    if batch_norm:
        bn, scale = batch_norm
        mean, var, factor = _check_blobs(bn, blobs, [(n,), (n,), (1,)], caffemodel)
        f = 0.0 if factor[0] == 0 else 1.0 / float(factor[0])       # caffe batch_norm_layer.cpp
        eps = float(bn.param("batch_norm_param", "eps", _BN_EPS))
        scale_bias = scale.param("scale_param", "bias_term", "false") in ("true", 1, True)
        gamma_beta = _check_blobs(scale, blobs, [(n,)] * (2 if scale_bias else 1), caffemodel)
        gamma = gamma_beta[0].astype(np.float64) if fold_scale else np.ones(n)
        beta = gamma_beta[1].astype(np.float64) if scale_bias and fold_scale else np.zeros(n)
        m = gamma / np.sqrt(var.astype(np.float64) * f + eps)
        w, b = w * m, (b - mean.astype(np.float64) * f) * m + beta
    if pad != (0, 0):
        x = keras.layers.ZeroPadding2D(pad, name=f"{layer.name}_pad")(x)
    conv = keras.layers.Conv2D(n, kernel, strides=stride, padding="valid", name=layer.name)
    y = conv(x)
    conv.set_weights([w.astype(np.float32), b.astype(np.float32)])
    return y


def _pooling(layer: Layer, x, nonnegative: bool, where: str):
    """Caffe pooling: ceil-mode output size, symmetric padding; global pooling over the whole blob."""
    import keras

    pool = layer.param("pooling_param", "pool", "MAX")
    if pool not in ("MAX", "AVE"):
        raise InputError(f"{where}: pool {pool} is not converted (MAX or AVE)")
    height, width = int(x.shape[1]), int(x.shape[2])
    if layer.param("pooling_param", "global_pooling", "false") in ("true", 1, True):
        kernel, stride, pad = (height, width), (1, 1), (0, 0)
    else:
        kernel, stride, pad = (layer.pair("pooling_param", f, d) for f, d in (("kernel", 0), ("stride", 1), ("pad", 0)))
    out = [_caffe_pool_size(s, k, st, p) for s, k, st, p in zip((height, width), kernel, stride, pad)]
    extra = [max((o - 1) * st + k - (s + 2 * p), 0) for o, s, k, st, p in zip(out, (height, width), kernel, stride, pad)]
    padding = ((pad[0], pad[0] + extra[0]), (pad[1], pad[1] + extra[1]))
    if any(sum(p) for p in padding):
        if pool == "AVE" or not nonnegative:
            raise InputError(f"{where}: {pool} pooling over padding is converted only for MAX pooling of a "
                             "ReLU's output (zero padding is exact there)")
        x = keras.layers.ZeroPadding2D(padding, name=f"{layer.name}_pad")(x)
    pooling = keras.layers.MaxPooling2D if pool == "MAX" else keras.layers.AveragePooling2D
    y = pooling(kernel, strides=stride, padding="valid", name=layer.name)(x)
    assert tuple(y.shape[1:3]) == tuple(out), (layer.name, y.shape, out)
    return y


def _inner_product(layer: Layer, x, blobs: dict, caffemodel):
    """InnerProduct: Caffe flattens a [C, H, W] blob channels first; the kernel's rows are reordered
    to the [H, W, C] order Keras flattens in."""
    import keras

    n = int(layer.param("inner_product_param", "num_output"))
    bias_term = layer.param("inner_product_param", "bias_term", "true") in ("true", 1, True)
    spatial = tuple(int(d) for d in x.shape[1:])          # (H, W, C), or (C,)
    c_in = int(np.prod(spatial))
    arrays = _check_blobs(layer, blobs, [(n, c_in)] + ([(n,)] if bias_term else []), caffemodel)
    w = arrays[0]
    if len(spatial) == 3:
        h, wd, c = spatial
        w = w.reshape(n, c, h, wd).transpose(0, 2, 3, 1).reshape(n, c_in)
        x = keras.layers.Flatten(name=f"{layer.name}_flatten")(x)
    dense = keras.layers.Dense(n, name=layer.name)
    y = dense(x)
    dense.set_weights([np.ascontiguousarray(w.T), arrays[1] if bias_term else np.zeros(n, np.float32)])
    return y


def weights_digest(model) -> str:
    """SHA-256 of a model's weights and their shapes: what a labelled file's rows depend on (about
    0.26 CPU-s for the ResNet-152's 59 M weights)."""
    return digest(chunk for w in model.get_weights()
                  for chunk in (str(w.shape).encode(), np.ascontiguousarray(w).tobytes()))
