"""Caffe models without Caffe, for the converter's tests.

The published ``caffe.proto`` (../shared/data/places365) is compiled at test time with grpcio-tools'
protoc into a descriptor set, and its message classes are made from that at run time (no generated
code, so any protobuf runtime reads it). A caffemodel is a ``NetParameter`` whose layers carry their
weight blobs; `write_random_caffemodel` fills one for a prototxt with random weights, random
BatchNorm statistics (scale factor far from 1) and Scale parameters far from identity. The
fixtures `net_class` and `small` (the small ResNet with random weights) and `serving` (a loopback
HTTP server standing in for the release's hosts) serve the scene-conversion tests.
"""
import contextlib
import http.server
import pathlib
import socket
import subprocess
import sys
import threading

import numpy as np
import pytest

LOGIT_SCALE = 6.0      # the classifier's weights: logits spread over a few units
MEAN_BGR = np.array([103.939, 116.779, 123.68], np.float32)   # the Caffe release's input blob: BGR - mean

def _conv(bottom, top, n, k, p, s, bias="false", relu=True):
    """A Convolution + BatchNorm + Scale (+ ReLU) of the published network's naming, in place."""
    text = (f'layer {{ bottom: "{bottom}" top: "{top}" name: "{top}" type: "Convolution"\n'
            f'  convolution_param {{ num_output: {n} kernel_size: {k} pad: {p} stride: {s} bias_term: {bias} }} }}\n'
            f'layer {{ bottom: "{top}" top: "{top}" name: "bn_{top}" type: "BatchNorm" }}\n'
            f'layer {{ bottom: "{top}" top: "{top}" name: "scale_{top}" type: "Scale" scale_param {{ bias_term: true }} }}\n')
    return text + (f'layer {{ bottom: "{top}" top: "{top}" name: "{top}_relu" type: "ReLU" }}\n' if relu else "")


def _sum(block, operation=""):
    return (f'layer {{ bottom: "{block}_branch1" bottom: "{block}_branch2c" top: "{block}" name: "{block}" '
            f'type: "Eltwise" {operation}}}\nlayer {{ bottom: "{block}" top: "{block}" name: "{block}_relu" type: "ReLU" }}\n')


# A small ResNet of the published network's layer types and naming: ceil-mode max pooling
# (24 -> 12 where rounding down gives 11), a stride-2 block with the stride on its 1x1
# convolutions, a convolution with a bias, a channels-first flatten into the classifier
# (32 x 3 x 3 -> 365).
SMALL_RESNET = (
    'name: "small-resnet"\ninput: "data"\ninput_dim: 1\ninput_dim: 3\ninput_dim: 48\ninput_dim: 48\n'
    + _conv("data", "conv1", 8, 5, 2, 2)
    + 'layer { bottom: "conv1" top: "pool1" name: "pool1" type: "Pooling"\n'
      '  pooling_param { kernel_size: 3 stride: 2 pool: MAX } }\n'
    + _conv("pool1", "res2a_branch1", 16, 1, 0, 1, relu=False) + _conv("pool1", "res2a_branch2a", 4, 1, 0, 1, "true")
    + _conv("res2a_branch2a", "res2a_branch2b", 4, 3, 1, 1) + _conv("res2a_branch2b", "res2a_branch2c", 16, 1, 0, 1, relu=False)
    + _sum("res2a")
    + _conv("res2a", "res3a_branch1", 32, 1, 0, 2, relu=False) + _conv("res2a", "res3a_branch2a", 8, 1, 0, 2)
    + _conv("res3a_branch2a", "res3a_branch2b", 8, 3, 1, 1) + _conv("res3a_branch2b", "res3a_branch2c", 32, 1, 0, 1, relu=False)
    + _sum("res3a", "eltwise_param { operation: SUM } ")
    + 'layer { bottom: "res3a" top: "pool5" name: "pool5" type: "Pooling"\n'
      '  pooling_param { kernel_size: 2 stride: 2 pool: AVE } }\n'
      'layer { bottom: "pool5" top: "fc365" name: "fc365" type: "InnerProduct"\n'
      '  inner_product_param { num_output: 365 } }\n'
      'layer { bottom: "fc365" top: "prob" name: "prob" type: "Softmax" }\n')


_PROTOC = """import importlib.resources, pathlib, sys
from grpc_tools import protoc
proto, out = pathlib.Path(sys.argv[1]), sys.argv[2]
include = importlib.resources.files("grpc_tools") / "_proto"
sys.exit(protoc.main(["protoc", f"-I{proto.parent}", f"-I{include}", f"--descriptor_set_out={out}", proto.name]))
"""


def caffe_net_class(caffe_proto, work_dir):
    """The ``caffe.NetParameter`` message class of `caffe_proto`, compiled into `work_dir`."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    caffe_proto, work_dir = pathlib.Path(caffe_proto), pathlib.Path(work_dir)
    descriptors = work_dir / "caffe.desc"
    # protoc runs in its own process: its compiler and TensorFlow's protobuf in one process crash.
    result = subprocess.run([sys.executable, "-c", _PROTOC, str(caffe_proto), str(descriptors)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"protoc failed on {caffe_proto}: {result.stderr[-2000:]}"
    pool = descriptor_pool.DescriptorPool()
    for proto in descriptor_pb2.FileDescriptorSet.FromString(descriptors.read_bytes()).file:
        pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("caffe.NetParameter"))


def _pool_size(size, kernel, stride, pad):
    out = int(np.ceil((size + 2 * pad - kernel) / stride)) + 1      # Caffe rounds pooling up
    return out - 1 if pad and (out - 1) * stride >= size + pad else out


def random_blobs(net, seed=0) -> dict:
    """{layer name: [float32 arrays]} of random weights for a parsed ``NetParameter`` (its prototxt).

    Shapes follow Caffe's layout: convolution [out, in, kh, kw], BatchNorm [C], [C], [1] holding
    mean * f, variance * f and f (f from 3 to 9), Scale [C] (+ [C]) with gammas of either sign,
    InnerProduct [out, in] (+ [out]). The statistics follow a rough upper estimate of each blob's
    mean square (a ReLU taken to keep it, a sum adding), so that activations stay finite through
    deep nets and the classifier's logits spread over a few units (probabilities far from one-hot).
    """
    rng = np.random.default_rng(seed)
    shape = {net.input[0]: tuple(net.input_dim[1:])}                 # blob -> (C, H, W)
    power = {net.input[0]: 70.0 ** 2}                                 # blob -> its rough mean square
    after_scale = set()                                               # blobs a Scale wrote last
    blobs = {}
    for layer in net.layer:
        c, h, w = shape[layer.bottom[0]]
        x2 = power[layer.bottom[0]]
        arrays, out = [], (c, h, w)
        if layer.type == "Convolution":
            p = layer.convolution_param
            k, s, pad = p.kernel_size[0], (list(p.stride) or [1])[0], (list(p.pad) or [0])[0]
            arrays = [rng.normal(0, np.sqrt(2.0 / (c * k * k)), (p.num_output, c, k, k))]
            if p.bias_term:
                arrays.append(rng.normal(0, 0.5, p.num_output))
            out = (p.num_output, (h + 2 * pad - k) // s + 1, (w + 2 * pad - k) // s + 1)
            x2 = 2.0 * x2
        elif layer.type == "BatchNorm":
            factor = rng.uniform(3.0, 9.0)                              # the moving-average scale factor
            arrays = [rng.normal(0, 0.1 * np.sqrt(x2), c) * factor, rng.uniform(0.5, 2.0, c) * x2 * factor,
                      np.array([factor])]
            x2 = 1.0
        elif layer.type == "Scale":
            # the last Scale of a residual branch small, as in trained ResNets: the shortcut carries the photo
            low, high = (0.1, 0.3) if layer.name.endswith("branch2c") else (0.4, 1.6)
            gamma = rng.uniform(low, high, c)
            arrays = [gamma * rng.choice([-1, 1], c), rng.normal(0, 0.1 * low / 0.4, c)]
            x2 = float(np.mean(gamma ** 2)) + 0.01
            after_scale.add(layer.top[0])
        elif layer.type == "ReLU" and layer.bottom[0] in after_scale:
            x2 = x2 / 2                                                 # of a zero-mean blob
        elif layer.type == "Eltwise":
            x2 = sum(power[b] for b in layer.bottom)
        elif layer.type == "Pooling":
            p = layer.pooling_param
            out = (c, _pool_size(h, p.kernel_size, p.stride, p.pad), _pool_size(w, p.kernel_size, p.stride, p.pad))
        elif layer.type == "InnerProduct":
            n = layer.inner_product_param.num_output
            arrays = [rng.normal(0, LOGIT_SCALE / np.sqrt(c * h * w * x2), (n, c * h * w)), rng.normal(0, 0.3, n)]
            out, x2 = (n, 1, 1), 4.0
        if layer.type != "Scale":
            after_scale.discard(layer.top[0])
        if arrays:
            blobs[layer.name] = [a.astype(np.float32) for a in arrays]
        shape[layer.top[0]], power[layer.top[0]] = out, x2
    return blobs


def write_caffemodel(net_class, prototxt, path, blobs) -> None:
    """Writes `blobs` ({layer name: arrays}) as the caffemodel of `prototxt`: its layers with blobs."""
    from google.protobuf import text_format

    net = text_format.Parse(pathlib.Path(prototxt).read_text(), net_class())
    model = net_class(name=net.name)
    for layer in net.layer:
        if layer.name not in blobs:
            continue
        out = model.layer.add(name=layer.name, type=layer.type)
        out.bottom.extend(layer.bottom)
        out.top.extend(layer.top)
        for array in blobs[layer.name]:
            blob = out.blobs.add()
            blob.shape.dim.extend(array.shape)
            blob.data.extend(array.ravel().tolist())
    pathlib.Path(path).write_bytes(model.SerializeToString())


def write_random_caffemodel(net_class, prototxt, path, seed=0) -> dict:
    """A caffemodel of random weights for `prototxt` (`random_blobs`); returns the blobs written."""
    from google.protobuf import text_format

    net = text_format.Parse(pathlib.Path(prototxt).read_text(), net_class())
    blobs = random_blobs(net, seed)
    write_caffemodel(net_class, prototxt, path, blobs)
    return blobs


def opencv_probabilities(prototxt, caffemodel, images_rgb) -> np.ndarray:
    """OpenCV's own forward pass of the Caffe files on uint8 RGB images [batch, H, W, 3]: the input
    blob is the Caffe convention, BGR minus the mean, channels first."""
    import cv2

    net = cv2.dnn.readNetFromCaffe(str(prototxt), str(caffemodel))
    blob = (np.asarray(images_rgb, np.float32)[..., ::-1] - MEAN_BGR).transpose(0, 3, 1, 2)
    net.setInput(np.ascontiguousarray(blob))
    return net.forward().reshape(len(blob), -1)


@pytest.fixture
def net_class(places365_dir, tmp_path):
    return caffe_net_class(places365_dir / "caffe.proto", tmp_path)


@pytest.fixture
def small(net_class, tmp_path):
    """(prototxt, caffemodel, blobs written) of the small ResNet with random weights."""
    prototxt = tmp_path / "small.prototxt"
    prototxt.write_text(SMALL_RESNET)
    blobs = write_random_caffemodel(net_class, prototxt, tmp_path / "small.caffemodel")
    return prototxt, tmp_path / "small.caffemodel", blobs


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]            # nobody listens there once it is closed


@contextlib.contextmanager
def serving(files: dict, max_requests: int = 4):
    """A local HTTP server (127.0.0.1, this test's only) answering GET /NAME with files[NAME] (bytes),
    at most `max_requests` times, stopped when the block ends; yields its base URL."""
    served = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            served.append(self.path)
            if len(served) > max_requests:
                self.send_error(503)
                return
            body = files[self.path.lstrip("/")]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
