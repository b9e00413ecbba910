"""Every variant of Table 3 as a gin file: parses, and with smoke.gin on top builds and trains its model."""
import pathlib

import gin
import pytest

from geoest.errors import InputError
from geoest.models import output_sizes
from geoest.training import train
from geoest.training.config import parse_gin

GIN_DIR = pathlib.Path(__file__).resolve().parents[1] / "gin"
C, M, F = ("cells_50_5000", 3298), ("cells_50_2000", 7202), ("cells_50_1000", 12893)  # Table 1
# The heads each variant must have (§3.3, Table 3, Table 5, Table 6).
VARIANTS = {
    "base_L_c": dict([C]), "base_L_m": dict([M]), "base_L_f": dict([F]), "base_M": dict([C, M, F]),
    "isn_indoor": dict([C, M, F]), "isn_natural": dict([C, M, F]), "isn_urban": dict([C, M, F]),
    "mtn_s3": dict([F, ("scene", 3)]), "mtn_s16": dict([F, ("scene", 16)]), "mtn_s365": dict([F, ("scene", 365)]),
    "base_vgg_L_m": dict([M]),
}


# Files put on top of a variant or of each other, not rows of Table 3.
INCLUDES = {"smoke", "finetune", "demo", "demo_isn"}


def test_every_variant_file_is_listed():
    files = {p.stem for p in GIN_DIR.glob("*.gin")} - INCLUDES
    assert files == set(VARIANTS)


@pytest.mark.parametrize("name", ["demo", "demo_isn"])   # the others are parsed with the variants above
def test_demo_files_parse_and_build_with_smoke_on_top(name, tmp_path):
    parse_gin([f"{name}.gin", "smoke.gin"], ["train.steps_per_epoch = 1", "train.validation_steps = 1"])
    model = train(str(tmp_path / name), variant=[name, "smoke"])
    assert int(model.optimizer.iterations.numpy()) == 1


def test_demo_isn_file_is_demo_gin_with_the_isn_settings_it_had_as_bindings():
    # The demo's ISNs train exactly as when these three bindings followed demo.gin (same Table 6).
    per_run = ["train.init_from = 'demo_output/model'", "train_dataset.concept = 'urban'", "train.epochs = 2"]
    parse_gin(["demo.gin"], ["train_dataset.tau_s = 0.3", "make_optimizer.learning_rate = 0.005",
                             "make_optimizer.decay_every_epochs = 100", *per_run])
    as_bindings = gin.config_str()
    gin.clear_config()
    parse_gin(["demo_isn.gin"], per_run)
    assert gin.config_str() == as_bindings
    assert _query("train_dataset.tau_s") == 0.3    # §4 tau_S


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_variant_builds_its_heads_with_smoke_on_top(variant, mp16_dir, tmp_path):
    # smoke.gin's synthetic partitionings replaced by the published ones, to check the variant's heads.
    published = [f"{macro} = '{name}.csv'" for macro, (name, _) in zip(("COARSE", "MIDDLE", "FINE"), (C, M, F))]
    parse_gin([f"{variant}.gin", "smoke.gin"], [f"PARTITIONINGS_DIR = '{mp16_dir}'", *published,
                                                "train.steps_per_epoch = 1", "train.validation_steps = 1"])
    model = train(str(tmp_path / variant), variant=[variant, "smoke"])
    assert output_sizes(model) == VARIANTS[variant]
    assert model.input_shape == (None, 64, 64, 3)
    assert int(model.optimizer.iterations.numpy()) == 1
    assert (tmp_path / variant / "best.keras").is_file()


def _query(name):
    return gin.query_parameter(name)


def _resolved(name):
    """A parameter's value with its macros followed (%FINETUNE_FROM -> %BASE_M_DIR -> the value)."""
    value = _query(name)
    while isinstance(value, gin.config.ConfigurableReference) and value.scoped_selector.endswith("/gin.macro"):
        value = _query(value.scoped_selector.split("/")[0] + "/gin.macro.value")
    return value


@pytest.mark.parametrize("concept", ["indoor", "natural", "urban"])
def test_isn_files_follow_section_4(concept):
    parse_gin([f"isn_{concept}.gin"])
    assert _query("train_dataset.concept") == concept
    assert _query("train_dataset.tau_s") == 0.3
    assert _query("make_optimizer.learning_rate") == 0.001
    assert _query("train.epochs") == 5
    # §3.3, §4: from base(M) after its 15 epochs (the scene-agnostic model), not from its fine-tuned
    # model: the same 15 + 5 epochs as every other model of Table 6.
    assert _resolved("train.init_from") == "models/base_M"
    gin.clear_config()
    parse_gin(["base_M.gin"])
    assert _query("train.epochs") == 15 and "init_from" not in gin.get_bindings("train")


def test_base_vgg_is_vgg16_with_fc6_and_fc7_with_smoke_on_top(tmp_path):
    # §4.4 base-vgg(L, m): VGG16 as in Im2GPS, fc6 / fc7 of 4,096 under the middle head.
    import keras

    parse_gin(["base_vgg_L_m.gin", "smoke.gin"], ["build_model.backbone = 'vgg16'", "IMAGE_SIZE = 32",
                                                  "train.steps_per_epoch = 1", "train.validation_steps = 1"])
    model = train(str(tmp_path / "base_vgg"), variant=["base_vgg_L_m", "smoke"])
    vgg = model.get_layer("vgg16")
    dense = [(d.name, d.units) for d in vgg.layers if isinstance(d, keras.layers.Dense)]
    assert dense == [("fc1", 4096), ("fc2", 4096)]
    (head,) = output_sizes(model)
    assert model.get_layer(head).kernel.shape[0] == 4096


def test_base_files_follow_section_4():
    parse_gin(["base_M.gin"])
    assert _query("make_optimizer.learning_rate") == 0.01 and _query("make_optimizer.momentum") == 0.9
    assert _query("make_optimizer.decay_factor") == 0.5 and _query("make_optimizer.decay_every_epochs") == 5
    assert _query("add_weight_decay.weight_decay") == 1e-4
    assert _query("train.epochs") == 15 and _query("train.batch_size") == 128
    assert _query("build_model.backbone") == "resnet101v2"
    gin.clear_config()
    parse_gin(["base_vgg_L_m.gin"])
    assert _query("build_model.backbone") == "vgg16"


@pytest.mark.parametrize("name", ["isn_urban.gin", "gin/isn_urban.gin"])
def test_gin_files_are_found_from_any_directory(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    parse_gin([name])
    assert _query("train_dataset.concept") == "urban"


@pytest.mark.parametrize("files, params, words", [
    (["base_M.gin"], ["train.epohcs = 3"], ["epohcs"]),
    (["base_M.gin"], ["no_such_function.value = 1"], ["no_such_function"]),
    (["nonexistent_variant.gin"], [], ["nonexistent_variant.gin"]),
])
def test_bad_gin_input_raises_input_error(files, params, words):
    with pytest.raises(InputError) as error:
        parse_gin(files, params)
    assert all(word in str(error.value) for word in words)


@pytest.mark.parametrize("variant", sorted(v for v in VARIANTS if not v.startswith("isn_")))
def test_table3_variants_start_from_imagenet_and_smoke_from_random_weights(variant):
    parse_gin([f"{variant}.gin"])     # §4: "initialized with the weights of an ImageNet model"
    assert gin.get_bindings("build_model")["weights"] == "imagenet"
    gin.clear_config()
    parse_gin([f"{variant}.gin", "smoke.gin"])
    assert gin.get_bindings("build_model")["weights"] is None
