"""§3.2: a Caffe network definition (deploy ``.prototxt``) read into its layers, and the check that
it is the published Places365 ResNet-152.

`read_prototxt` reads the protobuf text format with protobuf's own tokenizer, without the Caffe
schema, into a `CaffeNet`: its input blob and shape and its `Layer`s in order.
`check_resnet152_places365` compares it layer by layer with the published definition and names
the first layer that differs.
"""
import dataclasses
import pathlib

from google.protobuf import text_format

from geoest.errors import InputError


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
