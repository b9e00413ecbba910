"""URL lists: one row per IMG_ID, non-http(s) URLs and repeated IMG_IDs counted, the authors'
headerless layout read, Flickr URLs asking for 640 px."""
from geoest.data import url_list
from geoest.data.download_reasons import DUPLICATE, NOT_HTTP


def test_url_list_rows_counted_duplicates_and_non_http_headerless(tmp_path):
    urls = tmp_path / "urls.csv"
    urls.write_text("a.jpg,http://farm1.staticflickr.com/12/34_ab12.jpg\nb.jpg,file:///etc/passwd\n"
                    "a.jpg,http://127.0.0.1/other.jpg\nc.jpg,https://live.staticflickr.com/1/2_ff_b.jpg\n")
    listed = url_list.read_url_list(urls)      # the authors' headerless IMG_ID,URL layout
    assert listed.ids == ["a.jpg", "c.jpg"] and listed.rows == 4
    assert listed.urls == ["http://farm1.staticflickr.com/12/34_ab12_z.jpg", "https://live.staticflickr.com/1/2_ff_z.jpg"]
    assert listed.skipped == {NOT_HTTP: ["b.jpg"], DUPLICATE: ["a.jpg"]}


def test_flickr_urls_ask_for_640_px():
    assert url_list.flickr_sized("http://farm3.staticflickr.com/2005/2073224451_0cbcdcc98e.jpg") == \
        "http://farm3.staticflickr.com/2005/2073224451_0cbcdcc98e_z.jpg"
    assert url_list.flickr_sized("https://live.staticflickr.com/65535/1_0c_b.jpg").endswith("/1_0c_z.jpg")
    assert url_list.flickr_sized("http://farm3.staticflickr.com/1/2_0c_o.jpg").endswith("_o.jpg")   # own secret
    assert url_list.flickr_sized("http://example.org/1/2_0c.jpg") == "http://example.org/1/2_0c.jpg"
    assert url_list.flickr_sized("http://127.0.0.1:8000/1/2_0c.jpg", hosts=r"127\.0\.0\.1") == \
        "http://127.0.0.1:8000/1/2_0c_z.jpg"
