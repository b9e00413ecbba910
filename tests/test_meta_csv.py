"""Meta CSVs for build_tfrecords: the accepted formats and row-naming errors."""
import numpy as np
import pytest

from geoest.data.meta_csv import PROBS365_COLUMNS, read_meta_csv
from geoest.errors import InputError

IM2GPS_HEADER = ("IMG_ID,AUTHOR,LAT,LON,S3_Label,S16_Label,S365_Label,"
                 "Prob_indoor,Prob_natural,Prob_urban")


def test_im2gps_meta_format_gives_probs3(tmp_path):
    path = tmp_path / "im2gps3k_places365.csv"
    path.write_text(IM2GPS_HEADER + "\n"
                    "1_a.jpg,12@N0,48.5,2.25,2,10,300,0.1,0.2,0.7\n"
                    "45/77/2_b.jpg,13@N0,-33.9,151.2,1,5,100,0.05,0.9,0.05\n")
    meta = read_meta_csv(path)
    assert meta.ids == ["1_a.jpg", "45/77/2_b.jpg"]
    np.testing.assert_allclose(meta.lat_deg, [48.5, -33.9])
    np.testing.assert_allclose(meta.lon_deg, [2.25, 151.2])
    np.testing.assert_allclose(meta.probs3, [[0.1, 0.2, 0.7], [0.05, 0.9, 0.05]], rtol=1e-6)
    assert meta.probs365 is None


def test_prob365_columns_give_probs365(tmp_path):
    probs = np.random.default_rng(0).dirichlet(np.ones(365), size=2)
    path = tmp_path / "meta.csv"
    header = "IMG_ID,LAT,LON," + ",".join(PROBS365_COLUMNS)
    rows = [f"img{i},{10 + i},{20 + i}," + ",".join(f"{p:.8f}" for p in probs[i])
            for i in range(2)]
    path.write_text("\n".join([header] + rows) + "\n")
    meta = read_meta_csv(path)
    assert meta.probs365.shape == (2, 365)
    np.testing.assert_allclose(meta.probs365, probs, atol=1e-7)
    assert meta.probs3 is None
    assert read_meta_csv(path, probs365=False).probs365 is None     # what scene statistics read


@pytest.mark.parametrize("body, expected", [
    ("a.jpg,91.0,0.0\n", r"row 1 \(line 2, IMG_ID 'a.jpg'\): LAT"),
    ("a.jpg,1.0,2.0\nb.jpg,north,2.0\n", r"row 2 .*'b.jpg'.*LAT is 'north'"),
    ("a.jpg,1.0,2.0\nb.jpg,1.0,\n", r"row 2 .*LON"),
    ("a.jpg,1.0,2.0\na.jpg,1.0,2.0\n", r"row 2 .*more than once"),
    (",1.0,2.0\n", r"row 1 .*empty IMG_ID"),
])
def test_bad_rows_are_named(tmp_path, body, expected):
    path = tmp_path / "meta.csv"
    path.write_text("IMG_ID,LAT,LON\n" + body)
    with pytest.raises(InputError, match=expected):
        read_meta_csv(path)


def test_a_column_named_twice_is_refused_naming_both(tmp_path):
    """Two LAT columns: which one a reader takes is arbitrary, so neither is taken."""
    path = tmp_path / "meta.csv"
    path.write_text("IMG_ID,LAT,LON,LAT\na.jpg,1.0,2.0,45.0\n")
    with pytest.raises(InputError, match=r"meta.csv: line 1: the column 'LAT' appears twice \(columns 2 and 4\)"):
        read_meta_csv(path)
    path.write_text("IMG_ID,LAT,LON,Prob_urban,Prob_indoor,Prob_natural,Prob_urban\na.jpg,1,2,0.1,0.2,0.7,0.1\n")
    with pytest.raises(InputError, match=r"'Prob_urban' appears twice \(columns 4 and 7\)"):
        read_meta_csv(path, scene=False)       # refused even where the column is not read


def test_bad_probability_and_missing_columns(tmp_path):
    path = tmp_path / "meta.csv"
    path.write_text("IMG_ID,LAT,LON,Prob_indoor,Prob_natural,Prob_urban\n"
                    "a.jpg,1,2,0.2,1.5,0.1\n")
    with pytest.raises(InputError, match=r"row 1 .*Prob_natural is 1.5"):
        read_meta_csv(path)
    path.write_text("IMG_ID,LATITUDE,LON\na.jpg,1,2\n")
    with pytest.raises(InputError, match=r"meta.csv: no column 'LAT'; the header has IMG_ID, LATITUDE, LON"):
        read_meta_csv(path)
    with pytest.raises(InputError, match="does not exist"):
        read_meta_csv(tmp_path / "absent.csv")


def test_scene_labels_are_read_and_checked_per_level(tmp_path):
    path = tmp_path / "im2gps.csv"
    path.write_text(IM2GPS_HEADER + "\n1_a.jpg,x,48.5,2.25,2,10,300,0.1,0.2,0.7\n2_b.jpg,y,1,2,0,15,0,0.8,0.1,0.1\n")
    np.testing.assert_array_equal(read_meta_csv(path).scene_labels, [[2, 10, 300], [0, 15, 0]])
    only_s16 = tmp_path / "s16.csv"
    only_s16.write_text("IMG_ID,LAT,LON,S16_Label\na,1,2,7\n")
    np.testing.assert_array_equal(read_meta_csv(only_s16).scene_labels, [[-1, 7, -1]])
    assert read_meta_csv(tmp_path / "im2gps.csv").probs365 is None
    for column, value in (("S16_Label", "16"), ("S365_Label", "365"), ("S3_Label", "-1"), ("S16_Label", "2.5")):
        bad = tmp_path / "bad.csv"
        bad.write_text(f"IMG_ID,LAT,LON,{column}\na,1,2,1\nb,1,2,{value}\n")
        with pytest.raises(InputError, match=rf"bad.csv: row 2 \(line 3, IMG_ID 'b'\): {column} is .*expected an S"):
            read_meta_csv(bad)


@pytest.mark.shared_data
def test_published_meta_files_read_as_they_are():
    """The authors' im2gps3k meta holds a Prob_urban of 1.0000000275 (a float sum): read, clipped to 1."""
    import pathlib

    published = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "published" / "meta"
    if not published.exists():
        pytest.skip(f"{published} is absent (../shared data is read in place, never copied)")
    meta = read_meta_csv(published / "im2gps3k_places365.csv")
    assert len(meta) == 2997 and meta.probs3.max() == 1.0
    np.testing.assert_array_equal(meta.scene_labels[:, 0], meta.probs3.argmax(axis=1))
    assert meta.scene_labels[:, 1].max() == 15 and meta.scene_labels[:, 2].max() <= 364


def test_coordinates_only_read_skips_the_scene_columns(tmp_path):
    """A partitioning needs IMG_ID, LAT, LON: the scene columns are not read, not even checked."""
    path = tmp_path / "meta.csv"
    path.write_text(IM2GPS_HEADER + ",prob365_0\n"             # 1 of the 365 columns: refused in full
                    "1_a.jpg,x,48.5,2.25,7,99,999,0.1,not,2,-1\n")
    meta = read_meta_csv(path, scene=False, author=False)
    assert meta.ids == ["1_a.jpg"] and (meta.lat_deg.tolist(), meta.lon_deg.tolist()) == ([48.5], [2.25])
    assert meta.probs3 is meta.probs365 is meta.scene_labels is meta.authors is None
    assert read_meta_csv(path, scene=False).authors == ["x"]                # what the scene labeller reads
    with pytest.raises(InputError, match=r"meta.csv: has only some of the 365 probability columns "
                                         r"prob365_0..prob365_364 \(missing prob365_1, "):
        read_meta_csv(path)
    path.write_text("IMG_ID,LAT,LON,Prob_indoor,Prob_urban\na,1,2,0.5,0.5\n")
    with pytest.raises(InputError, match=r"only some of the 3 probability columns Prob_indoor..Prob_urban \(missing Prob_natural\)"):
        read_meta_csv(path)
    assert read_meta_csv(path, scene=False, author=False).ids == ["a"]


def test_columns_named_by_the_caller_and_required_columns(tmp_path):
    path = tmp_path / "meta.csv"
    path.write_text("\ufeffphoto,lat_deg,lon_deg,AUTHOR\r\n\" b.jpg \",1.5,-2,Zoë\r\nc.jpg,3,4,\r\n")
    meta = read_meta_csv(path, "photo", "lat_deg", "lon_deg")
    assert meta.ids == ["b.jpg", "c.jpg"] and meta.authors == ["Zoë", ""]   # BOM, CRLF, spaces around ids
    np.testing.assert_array_equal(meta.lon_deg, [-2.0, 4.0])
    with pytest.raises(InputError, match=r"no column 'S3_Label'; the header has photo, lat_deg, lon_deg, AUTHOR"):
        read_meta_csv(path, "photo", "lat_deg", "lon_deg", required=["S3_Label"])


def test_bad_bytes_and_unreadable_rows_are_named(tmp_path):
    path = tmp_path / "meta.csv"
    path.write_bytes(b"IMG_ID,AUTHOR,LAT,LON\na.jpg,me,1,2\nb.jpg,Jos\xe9,1,2\n")
    with pytest.raises(InputError, match=r"meta.csv: line 3, byte 10: 0xe9 is not utf-8"):
        read_meta_csv(path)
    path.write_bytes(b"IMG_ID,LAT,LON\na.jpg,1,2\nb.jpg,1,2,3\n")
    with pytest.raises(InputError, match=r"meta.csv: not a readable meta CSV \(.*Expected 3 columns, got 4"):
        read_meta_csv(path)
    path.write_bytes(b"")
    with pytest.raises(InputError, match=r"meta.csv: empty file; expected a header with IMG_ID,LAT,LON"):
        read_meta_csv(path)
    path.write_text("IMG_ID,LAT,LON,S3_Label\na.jpg,1,2,\n")
    with pytest.raises(InputError, match=r"row 1 \(line 2, IMG_ID 'a.jpg'\): S3_Label is empty; expected an S3 label"):
        read_meta_csv(path)
