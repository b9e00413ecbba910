"""Meta CSVs for build_tfrecords: the accepted formats and row-naming errors."""
import numpy as np
import pytest

from geoest.data.meta import PROBS365_COLUMNS, read_meta_csv
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


def test_bad_probability_and_missing_columns(tmp_path):
    path = tmp_path / "meta.csv"
    path.write_text("IMG_ID,LAT,LON,Prob_indoor,Prob_natural,Prob_urban\n"
                    "a.jpg,1,2,0.2,1.5,0.1\n")
    with pytest.raises(InputError, match=r"row 1 .*Prob_natural is 1.5"):
        read_meta_csv(path)
    path.write_text("IMG_ID,LATITUDE,LON\na.jpg,1,2\n")
    with pytest.raises(InputError, match=r"missing column.*LAT"):
        read_meta_csv(path)
    with pytest.raises(InputError, match="does not exist"):
        read_meta_csv(tmp_path / "absent.csv")
