"""Partitioning: the §3.1 algorithm, CSV I/O, assign in numpy and TF, bad input."""
import subprocess
import sys

import numpy as np
import pytest
import s2geometry as s2
import tensorflow as tf

from geoest.errors import InputError
from geoest.geo import Partitioning, s2cell

TABLE1 = {5000: 3298, 2000: 7202, 1000: 12893}  # Table 1 cells at tau_min 50


def _cell_points(token, n, seed=0):
    """n points drawn uniformly over the leaf cells of the S2 cell `token`."""
    cell = s2.S2CellId.FromToken(token)
    lo, hi = cell.range_min().id(), cell.range_max().id()
    rng = np.random.default_rng(seed)
    leaves = lo + 2 * rng.integers(0, (hi - lo) // 2 + 1, size=n, dtype=np.uint64)
    lls = [s2.S2CellId(int(i)).ToLatLng() for i in leaves]
    return (np.array([ll.lat().degrees() for ll in lls]),
            np.array([ll.lng().degrees() for ll in lls]))


def _check_invariants(p, lat, lon, tau_min, tau_max, max_level=30):
    assert np.all(p.counts > tau_min)
    assert np.all(p.levels[p.counts > tau_max] == max_level)
    assert np.all(np.diff(p.cell_ids.astype(np.uint64)) > 0)  # increasing cell id order
    classes = p.assign(lat, lon)
    np.testing.assert_array_equal(np.bincount(classes[classes >= 0], minlength=len(p)), p.counts)
    for k in np.unique(classes[classes >= 0])[:50]:
        np.testing.assert_allclose(p.centers[k], [lat[classes == k].mean(),
                                                  lon[classes == k].mean()], rtol=1e-12)


def test_points_in_one_known_cell():
    lat, lon = _cell_points("479c", 120)  # a level-5 cell around Munich
    p = Partitioning.build(lat, lon, tau_min=5, tau_max=1000, min_level=2)
    # 120 points <= tau_max: the level-2 ancestor is never split.
    assert p.tokens == [s2.S2CellId.FromToken("479c").parent(2).ToToken()]
    assert p.counts.tolist() == [120]
    np.testing.assert_allclose(p.centers[0], [lat.mean(), lon.mean()])
    q = Partitioning.build(lat, lon, tau_min=5, tau_max=119, min_level=2)
    # 479c itself holds 120 > tau_max, so it is split: every cell lies inside it, deeper.
    assert np.all(q.levels >= 6)
    assert all(s2.S2CellId.FromToken("479c").contains(s2.S2CellId(int(c))) for c in q.cell_ids)
    _check_invariants(q, lat, lon, 5, 119)


def test_identical_coordinates_beyond_tau_max_stay_at_max_level():
    lat = np.concatenate([np.full(300, 48.137154), np.full(20, -33.9)])
    lon = np.concatenate([np.full(300, 11.576124), np.full(20, 18.4)])
    p = Partitioning.build(lat, lon, tau_min=50, tau_max=100)
    assert len(p) == 1 and p.counts[0] == 300 and p.levels[0] == 30
    assert p.tokens[0] == s2.S2CellId(s2.S2LatLng.FromDegrees(48.137154, 11.576124)).ToToken()
    assert p.assign([-33.9], [18.4]).tolist() == [-1]  # its cell held <= tau_min: no class
    q = Partitioning.build(lat, lon, tau_min=50, tau_max=100, max_level=12)
    assert q.levels.tolist() == [12]


@pytest.mark.parametrize("lat0,lon0", [(0.0, 180.0), (0.0, -180.0), (89.9999, 0.0),
                                       (-90.0, 0.0), (90.0, 45.0)])
def test_antimeridian_and_poles(lat0, lon0):
    rng = np.random.default_rng(0)
    lat = np.clip(lat0 + rng.normal(0, 0.01, 400), -90, 90)
    lon = lon0 + rng.normal(0, 0.01, 400)
    lon = (lon + 180) % 360 - 180  # wrap across the antimeridian
    p = Partitioning.build(lat, lon, tau_min=10, tau_max=100)
    _check_invariants(p, lat, lon, 10, 100)
    assert p.counts.sum() + np.sum(p.assign(lat, lon) < 0) == 400


@pytest.fixture(scope="module")
def mp16_points(tmp_path_factory):
    """A 5 % MP-16-shaped point set from ../shared/bench/make_points.py."""
    from conftest import MP16_DIR, SHARED
    script = SHARED / "bench" / "make_points.py"
    if not script.exists() or not MP16_DIR.exists():
        pytest.skip("../shared is absent")
    out = tmp_path_factory.mktemp("points") / "points.csv"
    subprocess.run([sys.executable, str(script), str(MP16_DIR / "cells_50_1000.csv"), str(out),
                    "--fraction", "0.05", "--seed", "7"], check=True, capture_output=True)
    from geoest.data.meta_csv import read_meta_csv
    meta = read_meta_csv(out, scene=False, author=False)
    return out, (meta.lat_deg, meta.lon_deg)


@pytest.mark.parametrize("tau_max", [100, 1000])
def test_build_on_mp16_shaped_points(mp16_points, tau_max, tmp_path):
    _, (lat, lon) = mp16_points
    p = Partitioning.build(lat, lon, tau_min=5, tau_max=tau_max)
    _check_invariants(p, lat, lon, 5, tau_max)
    # Shuffled input gives a byte-identical file.
    p.to_csv(tmp_path / "a.csv")
    perm = np.random.default_rng(1).permutation(len(lat))
    Partitioning.build(lat[perm], lon[perm], tau_min=5, tau_max=tau_max).to_csv(tmp_path / "b.csv")
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_real_partitionings_load_with_table1_counts(mp16_dir, tmp_path):
    for tau_max, n in TABLE1.items():
        path = mp16_dir / f"cells_50_{tau_max}.csv"
        p = Partitioning.from_csv(path)
        assert len(p) == n and p.name == f"cells_50_{tau_max}"
        rows = [r.split(",") for r in path.read_text().splitlines()[3:]]
        assert p.tokens == [r[1] for r in rows]
        np.testing.assert_array_equal(p.counts, [int(r[2]) for r in rows])
        np.testing.assert_array_equal(p.centers, [[float(r[3]), float(r[4])] for r in rows])
        assert np.all(p.counts > 50)
        p.to_csv(tmp_path / "copy.csv")
        assert Partitioning.from_csv(tmp_path / "copy.csv") == p
        # Every cell's mean coordinate lies in its own cell for most cells (not all: a mean of
        # points in a curved cell may fall outside it), and assign() finds it.
        own = p.assign(p.centers[:, 0], p.centers[:, 1]) == np.arange(n)
        assert own.mean() > 0.99


def test_assign_tf_equals_numpy(mp16_dir):
    p = Partitioning.from_csv(mp16_dir / "cells_50_1000.csv")
    rng = np.random.default_rng(0)
    lat = np.concatenate([p.centers[:, 0], np.degrees(np.arcsin(rng.uniform(-1, 1, 5000)))])
    lon = np.concatenate([p.centers[:, 1], rng.uniform(-180, 180, 5000)])
    expected = p.assign(lat, lon)
    assert (expected == -1).any() and (expected >= 0).any()
    np.testing.assert_array_equal(p.assign_tf(tf.constant(lat), tf.constant(lon)).numpy(),
                                  expected)
    # Inside a tf.data map, one example at a time, float32 as in TFRecords.
    ds = tf.data.Dataset.from_tensor_slices((lat.astype(np.float32), lon.astype(np.float32)))
    got = np.array(list(ds.map(p.assign_tf).as_numpy_iterator()))
    np.testing.assert_array_equal(got, p.assign(lat.astype(np.float32), lon.astype(np.float32)))
    # Bad values give -1 in the graph.
    bad = p.assign_tf(tf.constant([np.nan, 91.0, 10.0]), tf.constant([0.0, 0.0, 200.0]))
    assert bad.numpy().tolist() == [-1, -1, -1]


@pytest.mark.parametrize("lat,lon,message", [
    ([10.0, 91.0], [0.0, 0.0], "row 1: latitude 91.0"),
    ([10.0, np.nan], [0.0, 0.0], "row 1: latitude nan"),
    ([10.0, 0.0], [0.0, -180.5], "row 1: longitude -180.5"),
    ([10.0], [0.0, 1.0], "1 latitudes but 2 longitudes"),
])
def test_bad_coordinates(lat, lon, message):
    with pytest.raises(InputError, match=message):
        Partitioning.build(lat, lon, tau_min=0, tau_max=10)
    p = Partitioning.build([10.0, 10.0], [0.0, 0.0], tau_min=0, tau_max=10)
    with pytest.raises(InputError, match=message):
        p.assign(lat, lon)


@pytest.mark.parametrize("tau_min,tau_max", [(50, 50), (100, 50), (-1, 10)])
def test_bad_thresholds(tau_min, tau_max):
    with pytest.raises(InputError, match="tau_min"):
        Partitioning.build([0.0], [0.0], tau_min=tau_min, tau_max=tau_max)


HEADER = "class_label,hex_id,imgs_per_cell,latitude_mean,longitude_mean\n"


@pytest.mark.parametrize("content,message", [
    ("", "empty file"),
    ("num_images: 5\n", "empty file"),
    ("class,hex,n,lat,lon\n0,479c,60,48.1,11.5\n", "line 1: header"),
    (HEADER, "no cells"),
    (HEADER + "0,479c,60,48.1\n", "line 2: 4 fields"),
    (HEADER + "0,479c,60,48.1,11.5\n2,47a4,60,48.1,11.5\n", "line 3: class_label 2"),
    (HEADER + "0,zz,60,48.1,11.5\n", "line 2: not an S2 cell token"),
    (HEADER + "0,479c,sixty,48.1,11.5\n", "line 2"),
    (HEADER + "0,479c,60,148.1,11.5\n", "line 2: .*out of range"),
    (HEADER + "0,479c,60,48.1,11.5\n1,479d,60,48.1,11.5\n", "overlap"),
    (HEADER + "0,f,60,48.1,11.5\n", "not a valid S2 cell"),
])
def test_malformed_partitioning_csv(tmp_path, content, message):
    path = tmp_path / "cells.csv"
    path.write_text(content)
    with pytest.raises(InputError, match=message) as err:
        Partitioning.from_csv(path)
    assert str(path) in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        Partitioning.from_csv(tmp_path / "nope.csv")


def test_read_partitionings_is_the_one_loader(tmp_path):
    """Relative names resolve in `directory`, order is kept, `Partitioning`s pass through, and a
    missing file is named with its folder."""
    from geoest.geo import read_partitionings

    coarse = Partitioning.build(*_cell_points("89c25", 80), tau_min=5, tau_max=1000, name="coarse")
    fine = Partitioning.build(*_cell_points("89c25", 80), tau_min=5, tau_max=20, name="fine")
    fine.to_csv(tmp_path / "fine.csv")
    loaded = read_partitionings([coarse, "fine.csv"], tmp_path)
    assert loaded[0] is coarse and loaded[1] == fine and loaded[1].name == "fine"
    assert read_partitionings([tmp_path / "fine.csv"], "/elsewhere")[0] == fine   # absolute: as given
    with pytest.raises(InputError, match=f"{tmp_path / 'middle.csv'}: partitioning file not found"):
        read_partitionings(["fine.csv", "middle.csv"], tmp_path)


def test_geometry_helpers():
    p = Partitioning.build(*_cell_points("89c25", 80), tau_min=5, tau_max=1000, min_level=8)
    assert p.levels.tolist() == [8] and p.tokens == ["89c25"]
    cell = s2.S2CellId(int(p.cell_ids[0]))
    center = p.geometric_centers()[0]
    assert center[0] == pytest.approx(cell.ToLatLng().lat().degrees())
    poly = p.polygons()[0]
    assert poly.shape == (4, 2)
    # The cell's centre lies within the bounding box of its vertices.
    assert poly[:, 0].min() < center[0] < poly[:, 0].max()
    assert poly[:, 1].min() < center[1] < poly[:, 1].max()
    assert s2cell.token_to_id(p.tokens[0]) == int(p.cell_ids[0])
