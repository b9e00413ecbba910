"""Loading a model dir: its best model file, the partitionings of its heads from the paths given, the
dir or its operative config, and one-line refusals naming what is missing or does not fit."""
import pytest

from geoest.errors import InputError
from geoest.inference.modeldir import find_partitionings, load_geo_model, model_file
from inference_helpers import partitionings, save_model_dir, tiny_model


@pytest.fixture(scope="module")
def parts():
    return partitionings(n=1200)


def test_model_file_prefers_the_best_model_and_names_an_empty_dir(tmp_path):
    with pytest.raises(InputError, match=r"model dir .*missing does not exist"):
        model_file(tmp_path / "missing")
    with pytest.raises(InputError, match=r"holds no model file \(best.keras / model.keras / final.keras\)"):
        model_file(tmp_path)
    (tmp_path / "epoch3.keras").write_bytes(b"")
    assert model_file(tmp_path) == tmp_path / "epoch3.keras"          # the only one
    (tmp_path / "epoch4.keras").write_bytes(b"")
    with pytest.raises(InputError, match="holds no model file"):      # two: which is meant is not known
        model_file(tmp_path)
    for name in ("final.keras", "model.keras", "best.keras"):
        (tmp_path / name).write_bytes(b"")
        assert model_file(tmp_path) == tmp_path / name
    assert model_file(tmp_path / "epoch3.keras") == tmp_path / "epoch3.keras"


def test_partitionings_found_in_order_from_the_dir_or_the_operative_config(parts, tmp_path):
    names = [p.name for p in parts]
    run, elsewhere = tmp_path / "run", tmp_path / "csvs"
    (run / "partitionings").mkdir(parents=True), elsewhere.mkdir()
    for p in parts:
        p.to_csv(elsewhere / f"{p.name}.csv")
    with pytest.raises(InputError, match=r"no partitioning CSV for the model's heads \['coarse', 'middle', 'fine'\]"):
        find_partitionings(names, run)
    (run / "operative_config.gin").write_text(
        "train.partitioning_files = [\n" + "".join(f"    '{elsewhere / p.name}.csv',\n" for p in parts) + "]\n")
    found = find_partitionings(names[::-1], run)                        # the heads' order, not the files'
    assert [p.name for p in found] == names[::-1] and [len(p) for p in found] == [len(p) for p in parts[::-1]]
    parts[0].to_csv(run / "partitionings" / "coarse.csv")
    assert [p.name for p in find_partitionings(["coarse"], run)] == ["coarse"]
    with pytest.raises(InputError, match=r"heads \['fine'\] in .*only.csv; pass the CSVs .*fine.csv"):
        find_partitionings(["fine"], run, csv_paths=[tmp_path / "only.csv"])


def test_a_head_that_does_not_fit_its_partitioning_is_refused(parts, tmp_path):
    sizes = {p.name: len(p) for p in parts}
    save_model_dir(tiny_model(sizes), parts, tmp_path / "good")
    loaded = load_geo_model(tmp_path / "good")
    assert [p.name for p in loaded.partitionings] == list(sizes) and loaded.path.name == "best.keras"
    assert not loaded.has_scene_head
    save_model_dir(tiny_model({**sizes, "fine": sizes["fine"] + 1}), parts, tmp_path / "bad")
    with pytest.raises(InputError, match=rf"head 'fine' has {sizes['fine'] + 1} classes but partitioning 'fine' has "
                                         rf"{sizes['fine']} cells"):
        load_geo_model(tmp_path / "bad")
