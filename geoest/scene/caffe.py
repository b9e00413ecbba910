"""§3.2: the paper's scene classifier from its Caffe release, as a Keras model built from the prototxt.

The Places365 ResNet-152 is published as a Caffe network definition (``deploy_*.prototxt``) and its
weights (``*.caffemodel``). `read_prototxt` reads the definition (protobuf text format, read with
protobuf's own tokenizer) into its list of layers; `read_blobs` reads every layer's weight arrays
with OpenCV's Caffe importer (``cv2.dnn.readNetFromCaffe``, the ``scene`` extra) and checks each
against the shape the prototxt gives it; `build_model` lays the layers out as a Keras functional
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

`convert` turns the release into that model, saved as one ``.keras`` file with a manifest beside it
(``resnet152_places365.keras.json``: digests of the two Caffe files and of the weights, the
preprocessing); `fetch_release` downloads the two files, only when asked (``--download``).
"""
import dataclasses
import json
import pathlib
import time

import numpy as np
from google.protobuf import text_format

from geoest.errors import InputError
from geoest.files import atomic_path, check_output, digest, manifest_path, write_text
from geoest.scene.places365 import download_file

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


# -- the prototxt -----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Layer:
    """One ``layer { ... }`` of a prototxt: its name, type, bottom and top blobs, and its other
    fields as parsed (`params`: {field: [values]}, a nested message as such a dict)."""
    name: str
    type: str
    bottoms: tuple
    tops: tuple
    params: dict

    def param(self, message: str, field: str, default=None):
        """The first value of ``message.field`` (e.g. "convolution_param", "num_output")."""
        values = self.params.get(message, [{}])[0].get(field)
        return values[0] if values else default

    def pair(self, message: str, field: str, default: int) -> tuple:
        """A Caffe height/width field: ``field_h``/``field_w``, or ``field`` (one value for both, or two)."""
        p = self.params.get(message, [{}])[0]
        if f"{field}_h" in p:
            return int(p[f"{field}_h"][0]), int(p[f"{field}_w"][0])
        name = field + "_size" if field == "kernel" else field
        values = [int(v) for v in p.get(name, [])] or [default]
        return (values[0], values[-1])


@dataclasses.dataclass(frozen=True)
class CaffeNet:
    """A parsed prototxt: the network's name, its input blob and shape (C, H, W), its layers."""
    path: pathlib.Path
    name: str
    input_name: str
    input_shape: tuple
    layers: tuple


def _parse_fields(tokenizer, nested: bool) -> dict:
    """Protobuf text format without a schema: {field: [value, ...]}, messages as nested dicts."""
    fields = {}
    while not (tokenizer.TryConsume("}") if nested else tokenizer.AtEnd()):
        if nested and tokenizer.AtEnd():
            raise tokenizer.ParseError("the file ends inside a message (a '}' is missing)")
        name = tokenizer.ConsumeIdentifier()
        colon = tokenizer.TryConsume(":")
        if tokenizer.TryConsume("{"):
            value = _parse_fields(tokenizer, nested=True)
        elif not colon:
            raise tokenizer.ParseError(f"expected ':' or '{{' after {name!r}")
        elif tokenizer.token.startswith(("'", '"')):
            value = tokenizer.ConsumeString()
        else:
            token = tokenizer.token
            tokenizer.NextToken()
            value = _number(token)
        fields.setdefault(name, []).append(value)
    return fields


def _number(token: str):
    for kind in (int, float):
        try:
            return kind(token)
        except ValueError:
            pass
    return token                       # an enum value (MAX, SUM) or true / false


def read_prototxt(path) -> CaffeNet:
    """Reads a Caffe network definition (deploy prototxt).

    Raises:
      InputError: naming the file and the line where it is not protobuf text, or a layer that lacks
        a name, type or blobs, or a network without a 3-channel input shape.
    """
    path = pathlib.Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        fields = _parse_fields(text_format.Tokenizer(text.splitlines(keepends=True)), nested=False)
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read it as a Caffe prototxt ({e})") from e
    except text_format.ParseError as e:
        raise InputError(f"{path}: not a whole Caffe prototxt (a cut or foreign file?) at line:column {e}") from e
    layers = []
    for i, fields_of in enumerate(fields.get("layer", []), start=1):
        name, kind = fields_of.get("name", [None])[0], fields_of.get("type", [None])[0]
        if not isinstance(name, str) or not isinstance(kind, str) or not fields_of.get("top"):
            raise InputError(f"{path}: layer {i} ({name!r}) lacks a name, type or top blob")
        layers.append(Layer(name, kind, tuple(fields_of.get("bottom", ())), tuple(fields_of["top"]),
                            fields_of))
    dims = fields.get("input_dim") or (fields.get("input_shape", [{}])[0].get("dim", []))
    if not fields.get("input") or len(dims) != 4 or dims[1] != 3 or not layers:
        raise InputError(f"{path}: expected a deploy prototxt with one 3-channel input "
                         f"('input' and 4 'input_dim' N, 3, H, W) and layers; got input "
                         f"{fields.get('input')}, dims {dims}, {len(layers)} layers")
    return CaffeNet(path, str(fields.get("name", [""])[0]), fields["input"][0],
                    tuple(int(d) for d in dims[1:]), tuple(layers))


# -- the Places365 ResNet-152 -------------------------------------------------------------------------
def _resnet152_places365_layers() -> list:
    """The published ``deploy_resnet152_places365.prototxt`` layer by layer: (name, type, bottoms, tops,
    settings), settings being (num_output, kernel, stride, pad) of a convolution, (pool, kernel,
    stride) of a pooling, num_output of the fully-connected layer. ResNet-152: 3, 8, 36, 3
    bottleneck blocks; the stride of stages 3-5 on their first 1x1 convolutions."""
    layers = []

    def conv(top, bn, scale, bottom, n, k, s, p, relu):
        layers.append((top, "Convolution", (bottom,), (top,), (n, k, s, p)))
        layers.extend([(bn, "BatchNorm", (top,), (top,), None), (scale, "Scale", (top,), (top,), None)])
        if relu:
            layers.append((f"{top}_relu", "ReLU", (top,), (top,), None))
        return top

    conv("conv1", "bn_conv1", "scale_conv1", "data", 64, 7, 2, 3, True)
    layers.append(("pool1", "Pooling", ("conv1",), ("pool1",), ("MAX", 3, 2)))
    bottom = "pool1"
    for stage, blocks, width in ((2, 3, 64), (3, 8, 128), (4, 36, 256), (5, 3, 512)):
        for b in range(blocks):
            block = f"{stage}{'abc'[b] if blocks == 3 else ('a' if b == 0 else f'b{b}')}"
            stride = 2 if b == 0 and stage > 2 else 1
            branch = lambda part: (f"res{block}_{part}", f"bn{block}_{part}", f"scale{block}_{part}")
            shortcut = conv(*branch("branch1"), bottom, 4 * width, 1, stride, 0, False) if b == 0 else bottom
            top = conv(*branch("branch2a"), bottom, width, 1, stride, 0, True)
            top = conv(*branch("branch2b"), top, width, 3, 1, 1, True)
            top = conv(*branch("branch2c"), top, 4 * width, 1, 1, 0, False)
            layers.append((f"res{block}", "Eltwise", (shortcut, top), (f"res{block}",), None))
            layers.append((f"res{block}_relu", "ReLU", (f"res{block}",), (f"res{block}",), None))
            bottom = f"res{block}"
    layers.append(("pool5", "Pooling", (bottom,), ("pool5",), ("AVE", 7, 1)))
    layers.append(("fc365", "InnerProduct", ("pool5",), ("fc365",), 365))
    layers.append(("prob", "Softmax", ("fc365",), ("prob",), None))
    return layers


RESNET152_PLACES365 = tuple(_resnet152_places365_layers())
RESNET152_INPUT = (3, 224, 224)


def _signature(layer: Layer) -> tuple:
    settings = None
    if layer.type == "Convolution":
        settings = (layer.param("convolution_param", "num_output"), layer.pair("convolution_param", "kernel", 0)[0],
                    layer.pair("convolution_param", "stride", 1)[0], layer.pair("convolution_param", "pad", 0)[0])
    elif layer.type == "Pooling":
        settings = (layer.param("pooling_param", "pool", "MAX"), layer.pair("pooling_param", "kernel", 0)[0],
                    layer.pair("pooling_param", "stride", 1)[0])
    elif layer.type == "InnerProduct":
        settings = layer.param("inner_product_param", "num_output")
    return (layer.name, layer.type, layer.bottoms, layer.tops, settings)


def check_resnet152_places365(net: CaffeNet) -> None:
    """Raises InputError unless `net` is the published Places365 ResNet-152 definition, naming the
    file and the first layer that differs (or where the file ends)."""
    if net.input_shape != RESNET152_INPUT:
        raise InputError(f"{net.path}: input {net.input_name!r} of shape {net.input_shape}; the Places365 "
                         f"ResNet-152 takes {RESNET152_INPUT}")
    for i, expected in enumerate(RESNET152_PLACES365):
        if i >= len(net.layers):
            raise InputError(f"{net.path}: ends after {len(net.layers)} layers; the Places365 ResNet-152 has "
                             f"{len(RESNET152_PLACES365)} (the next would be {expected[0]!r}, {expected[1]}): "
                             "a truncated file?")
        got = _signature(net.layers[i])
        if got != expected:
            raise InputError(f"{net.path}: layer {i + 1} is {_describe(got)}; the Places365 ResNet-152 has "
                             f"{_describe(expected)}: not the Places365 ResNet-152 definition")
    if len(net.layers) > len(RESNET152_PLACES365):
        extra = net.layers[len(RESNET152_PLACES365)]
        raise InputError(f"{net.path}: layer {len(RESNET152_PLACES365) + 1} {extra.name!r} ({extra.type}) "
                         f"follows the Places365 ResNet-152's last layer")


def _describe(signature) -> str:
    name, kind, bottoms, tops, settings = signature
    return (f"{name!r} ({kind}, {','.join(bottoms)} -> {','.join(tops)}"
            + (f", {settings}" if settings is not None else "") + ")")


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


# -- the Keras model ------------------------------------------------------------------------------------
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


# -- the release, and its conversion -----------------------------------------------------------------
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


def weights_digest(model) -> str:
    """SHA-256 of a model's weights and their shapes: what a labelled file's rows depend on (about
    0.26 CPU-s for the ResNet-152's 59 M weights)."""
    return digest(chunk for w in model.get_weights()
                  for chunk in (str(w.shape).encode(), np.ascontiguousarray(w).tobytes()))
