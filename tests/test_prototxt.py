"""geoest.scene.prototxt: the published Places365 ResNet-152 definition is read and recognised; others,
cut ones and foreign ones are named by their first differing layer or their position."""
import pytest

from caffe_helpers import SMALL_RESNET
from geoest.errors import InputError
from geoest.scene.prototxt import check_resnet152_places365, read_prototxt

pytestmark = pytest.mark.shared_data


def test_the_published_definition_is_recognised_and_others_named_by_layer(places365_dir, tmp_path):
    small = tmp_path / "small.prototxt"
    small.write_text(SMALL_RESNET)
    published = places365_dir / "deploy_resnet152_places365.prototxt"
    net = read_prototxt(published)
    check_resnet152_places365(net)
    assert len(net.layers) == 670

    with pytest.raises(InputError, match=r"small.prototxt: input 'data' of shape \(3, 48, 48\)"):
        check_resnet152_places365(read_prototxt(small))
    text = published.read_text()
    cut = tmp_path / "cut.prototxt"
    cut.write_text(text[:text.rindex("layer {", 0, text.index('name: "res4b10_branch2a"'))])  # at a layer's start
    with pytest.raises(InputError, match=r"cut.prototxt: ends after \d+ layers.*'res4b10_branch2a'"):
        check_resnet152_places365(read_prototxt(cut))
    cut.write_text(text[:text.index("num_output: 365")])                    # ends inside a layer
    with pytest.raises(InputError, match=r"cut.prototxt: not a whole Caffe prototxt \(a cut or foreign file\?\) at line:column \d+:\d+"):
        read_prototxt(cut)
    other = tmp_path / "other.prototxt"
    other.write_text(text.replace("num_output: 128", "num_output: 64", 1))     # res3a_branch2a, narrower
    with pytest.raises(InputError, match=r"other.prototxt: layer 51 is 'res3a_branch2a' \(Convolution.*64"):
        check_resnet152_places365(read_prototxt(other))
