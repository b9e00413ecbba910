"""The embedded demo dataset: synthetic photos placed and painted like a tiny MP-16.

Where the photos are: dense around 92 real cities on every inhabited continent (two tight
landmark hotspots per city and a wider spread), sparse elsewhere (up to ~800 km from a
city), none at sea (`landmask`). The cell sizes of §3.1 adapt to exactly that density.

What the photos show: a location cue at every scale the partitionings of §3.1 resolve,
painted in one of the three scene concepts of §3.2:

  continent  ->  palette (sky / wall and ground / facade colours)   coarse cells
  region     ->  texture (stripes, columns, checks, dots)            middle cells
  city       ->  motif (circle, square, triangle, cross, diamond, ring)   fine cells

  urban    all three cues, motifs repeated over a skyline
  natural  palette and texture (terrain); city photos show a motif only now and then
  indoor   muted palette, faint floor texture, a motif on a poster in about half the photos

so a finer partitioning helps at city scale, the hierarchy (§3.4) helps because every cue
is shared by all the cells below it, and the scene concept (§3.3) tells which cues to trust.

Everything is deterministic from the seed: locations from one generator per split, each
photo's pixels from its own generator, so an interrupted run resumes where it stopped and
gives the same files.
"""
import dataclasses
import json
import os
import pathlib

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from geoest.demo import cities
from geoest.geo.landmask import is_land
from geoest.scene.columns import META_COLUMNS
from geoest.scene.places365 import CONCEPTS

SPLITS = ("train", "val", "test")
SPLIT_FRACTIONS = {"train": 0.75, "val": 0.10, "test": 0.15}
INDOOR, NATURAL, URBAN = (CONCEPTS.index(c) for c in ("indoor", "natural", "urban"))

EARTH_KM_PER_DEG = 111.195   # 2 pi 6371 km / 360
CITY_PHOTO_FRACTION = 0.8    # the rest are sparse photos away from the cities
HOTSPOT_FRACTION = 0.4       # of a city's photos: at one of its two landmarks
HOTSPOT_SIGMA_KM = 0.3
CITY_SIGMA_KM = 5.0
SPARSE_KM = (40.0, 800.0)    # log-uniform distance of a sparse photo from its nearest city
# Scene concept (indoor, natural, urban) of city photos and of sparse photos.
CITY_SCENES = (0.3, 0.2, 0.5)
SPARSE_SCENES = (0.15, 0.7, 0.15)

# Palette per continent (in `cities.CONTINENTS` order): (sky / wall, ground / facade) RGB.
PALETTES = np.array([
    [(120, 150, 215), (180, 90, 70)],    # Europe: blue sky, brick
    [(235, 185, 80), (50, 140, 120)],    # Asia: amber, teal
    [(245, 140, 50), (140, 100, 50)],    # Africa: orange, ochre
    [(150, 210, 235), (85, 85, 115)],    # North America: pale cyan, slate
    [(95, 205, 110), (200, 55, 125)],    # South America: green, magenta
    [(200, 120, 225), (230, 220, 110)],  # Oceania: lilac, sand
], dtype=np.float32)
TEXTURES = ("horizontal stripes", "vertical stripes", "checks", "dots")  # by region in continent
MOTIFS = ("circle", "square", "triangle", "cross", "diamond", "ring")    # by city in region

# Places365 categories a photo of each concept is labelled with (§3.2): (S365 index, S16 index)
# as in categories_places365.txt and the level-2 columns of the official scene hierarchy.
SCENE_CATEGORIES = {
    INDOOR: ((52, 2), (203, 2), (215, 2), (236, 5), (284, 0)),       # bedroom, kitchen, living, museum, restaurant
    NATURAL: ((48, 6), (151, 8), (232, 7), (205, 6), (116, 7)),      # beach, forest path, mountain, lake, desert
    URBAN: ((125, 15), (307, 15), (319, 15), (270, 11), (334, 11)),  # downtown, skyscraper, street, plaza, tower
}
NUM_AUTHORS = 300
GENERATOR_VERSION = 3  # bump when a change alters the pixels or coordinates


@dataclasses.dataclass(frozen=True)
class Photos:
    """Where the photos of one split are and what they show; arrays of length N."""
    lat_deg: np.ndarray      # float64
    lon_deg: np.ndarray      # float64
    city: np.ndarray         # int64 index into cities.CITIES: the nearest city (anchor)
    at_city: np.ndarray      # bool: a city photo (False: a sparse photo away from the city)
    scene: np.ndarray        # int64 concept index (0 indoor, 1 natural, 2 urban): what is painted
    probs3: np.ndarray       # float32 [N, 3]: the scene classifier's probabilities (§3.2)
    s16_label: np.ndarray    # int64
    s365_label: np.ndarray   # int64
    author: np.ndarray       # int64

    def __len__(self):
        return len(self.lat_deg)


@dataclasses.dataclass(frozen=True)
class DemoDataset:
    """What `generate` wrote: JPEGs in `image_dir`, one Im2GPS-format meta CSV per split."""
    root: pathlib.Path
    image_dir: pathlib.Path
    meta_csv: dict       # split -> path of <root>/<split>.csv
    num_images: dict     # split -> count
    photos: dict         # split -> Photos: what each photo shows (city, concept), beyond the meta CSV


def split_sizes(num_images: int) -> dict:
    """Images per split (train / val / test) for `num_images` in all."""
    val = int(round(num_images * SPLIT_FRACTIONS["val"]))
    test = int(round(num_images * SPLIT_FRACTIONS["test"]))
    return {"train": num_images - val - test, "val": val, "test": test}


def hotspots(seed: int) -> np.ndarray:
    """float64 [n_cities, 2, 2]: (lat, lon) of each city's two landmarks, 1-6 km from its centre."""
    rng = np.random.default_rng([seed, 1000])
    dist_km = rng.uniform(1.0, 6.0, size=(len(cities.CITIES), 2))
    bearing = rng.uniform(0.0, 2 * np.pi, size=(len(cities.CITIES), 2))
    lat, lon = _offset(cities.LAT_DEG[:, None], cities.LON_DEG[:, None],
                       dist_km * np.cos(bearing), dist_km * np.sin(bearing))
    # A landmark at sea moves to the city centre.
    sea = ~is_land(lat, lon)
    lat[sea] = np.broadcast_to(cities.LAT_DEG[:, None], lat.shape)[sea]
    lon[sea] = np.broadcast_to(cities.LON_DEG[:, None], lon.shape)[sea]
    return np.stack([lat, lon], axis=-1)


def _offset(lat_deg, lon_deg, north_km, east_km):
    """Moves points by (north, east) km on a local flat-earth approximation; wraps longitudes."""
    lat = np.clip(lat_deg + north_km / EARTH_KM_PER_DEG, -89.9, 89.9)
    lon = lon_deg + east_km / (EARTH_KM_PER_DEG * np.cos(np.radians(lat_deg)))
    return lat, (lon + 180.0) % 360.0 - 180.0


def sample_photos(num: int, seed: int, split: str) -> Photos:
    """Draws the locations, scene concepts and scene labels of one split (vectorised)."""
    rng = np.random.default_rng([seed, SPLITS.index(split)])
    at_city = rng.random(num) < CITY_PHOTO_FRACTION
    # City photos follow popularity; sparse photos spread over all cities more evenly.
    city = np.where(at_city,
                    rng.choice(len(cities.CITIES), num, p=_normalized(cities.POPULARITY)),
                    rng.choice(len(cities.CITIES), num, p=_normalized(np.sqrt(cities.POPULARITY))))
    lat = np.empty(num)
    lon = np.empty(num)
    landmarks = hotspots(seed)
    todo = np.arange(num)
    for _ in range(100):  # rejection sampling: redraw the points that fell into the sea
        if not len(todo):
            break
        lat[todo], lon[todo] = _draw_near_city(rng, city[todo], at_city[todo], landmarks)
        todo = todo[~is_land(lat[todo], lon[todo])]
    lat[todo], lon[todo] = cities.LAT_DEG[city[todo]], cities.LON_DEG[city[todo]]

    scene_p = np.where(at_city[:, None], CITY_SCENES, SPARSE_SCENES)
    scene = (rng.random(num)[:, None] > np.cumsum(scene_p, axis=1)).sum(axis=1)
    # §3.2: the scene classifier is confident but not always right.
    probs3 = rng.gamma(0.6 + 6.0 * np.eye(len(CONCEPTS))[scene]).astype(np.float32)
    probs3 /= probs3.sum(axis=1, keepdims=True)
    label3 = probs3.argmax(axis=1)
    category = rng.integers(0, 5, num)
    table = np.array([SCENE_CATEGORIES[c] for c in range(len(CONCEPTS))])  # [3, 5, 2]
    return Photos(lat_deg=lat, lon_deg=lon, city=city, at_city=at_city, scene=scene,
                  probs3=probs3, s16_label=table[label3, category, 1],
                  s365_label=table[label3, category, 0], author=rng.integers(0, NUM_AUTHORS, num))


def _normalized(weights):
    return weights / weights.sum()


def _draw_near_city(rng, city, at_city, landmarks):
    n = len(city)
    hotspot = at_city & (rng.random(n) < HOTSPOT_FRACTION)
    which = rng.integers(0, 2, n)
    center_lat = np.where(hotspot, landmarks[city, which, 0], cities.LAT_DEG[city])
    center_lon = np.where(hotspot, landmarks[city, which, 1], cities.LON_DEG[city])
    sigma_km = np.where(hotspot, HOTSPOT_SIGMA_KM, CITY_SIGMA_KM)
    north, east = rng.normal(size=(2, n)) * sigma_km
    sparse_km = np.exp(rng.uniform(*np.log(SPARSE_KM), n))
    bearing = rng.uniform(0.0, 2 * np.pi, n)
    north = np.where(at_city, north, sparse_km * np.cos(bearing))
    east = np.where(at_city, east, sparse_km * np.sin(bearing))
    return _offset(center_lat, center_lon, north, east)


# ---- Painting ------------------------------------------------------------------------------

def render(rng, height: int, width: int, city: int, at_city: bool, scene: int) -> np.ndarray:
    """Paints one photo: uint8 [height, width, 3] carrying the cues of `city` in `scene`."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    short = min(height, width)  # motifs and objects scale with the shorter side
    sky, ground = PALETTES[cities.CONTINENT[city]] * rng.uniform(0.8, 1.15)
    sky = sky + rng.normal(0, 10, 3)
    ground = ground + rng.normal(0, 10, 3)
    texture = _texture(rng, cities.REGION_IN_CONTINENT[cities.REGION[city]], yy, xx, short)
    motif = cities.CITY_IN_REGION[city]
    image = np.empty((height, width, 3), np.float32)

    if scene == URBAN:
        horizon = rng.uniform(0.25, 0.45) * height
        image[:] = sky * (1.1 - 0.3 * yy / height)[..., None]
        # A skyline of buildings, their facades in the region's texture.
        edges = np.sort(rng.uniform(0, width, rng.integers(3, 7)))
        tops = horizon + rng.uniform(-0.1, 0.25, len(edges) + 1) * height
        building_top = tops[np.searchsorted(edges, xx)]
        facade = yy >= building_top
        image[facade] = (ground * (0.5 + 0.5 * texture[..., None]))[facade]
        for _ in range(rng.integers(2, 5)):
            _paint_motif(rng, image, yy, xx, motif, rng.uniform(0.12, 0.16) * short)
    elif scene == NATURAL:
        horizon = rng.uniform(0.35, 0.6) * height
        image[:] = sky * (1.15 - 0.35 * yy / height)[..., None]
        land = yy >= horizon + 0.06 * height * np.sin(xx / width * rng.uniform(2, 8) + rng.uniform(0, 6))
        terrain = 0.6 * ground + 0.4 * np.array([90, 120, 70])
        image[land] = (terrain * (0.7 + 0.3 * texture[..., None]))[land]
        for _ in range(rng.integers(1, 5)):  # rocks and trees
            _paint_blob(rng, image, yy, xx, rng.uniform(20, 90, 3), short)
        if at_city and rng.random() < 0.3:
            _paint_motif(rng, image, yy, xx, motif, rng.uniform(0.10, 0.13) * short)
    else:  # indoor
        grey = np.float32(150)
        image[:] = 0.5 * sky + 0.5 * grey
        floor = yy >= rng.uniform(0.65, 0.8) * height
        image[floor] = ((0.5 * ground + 0.5 * grey) * (0.8 + 0.2 * texture[..., None]))[floor]
        for _ in range(rng.integers(1, 4)):  # furniture
            _paint_box(rng, image, yy, xx, rng.uniform(30, 220, 3))
        if at_city and rng.random() < 0.5:  # a poster of the city's landmark
            size = rng.uniform(0.14, 0.18) * short
            cy, cx = rng.uniform(size, 0.6 * height), rng.uniform(size, width - size)
            frame = (np.abs(yy - cy) <= 1.2 * size) & (np.abs(xx - cx) <= 1.2 * size)
            image[frame] = 235
            image[_motif_mask(motif, yy - cy, xx - cx, size)] = 30

    image += rng.normal(0, 6, image.shape).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8)


def _texture(rng, kind, yy, xx, short):
    """float32 [h, w] in {0, 1}: the region's texture, period 10-16 % of the shorter side, random phase."""
    period = rng.uniform(0.10, 0.16) * short
    fy = np.sin(2 * np.pi * yy / period + rng.uniform(0, 2 * np.pi))
    fx = np.sin(2 * np.pi * xx / period + rng.uniform(0, 2 * np.pi))
    if kind == 0:
        mask = fy > 0
    elif kind == 1:
        mask = fx > 0
    elif kind == 2:
        mask = fy * fx > 0
    else:
        mask = fy + fx > 1.0
    return mask.astype(np.float32)


def _motif_mask(motif, dy, dx, r):
    """bool mask of a motif of half-size r centred where (dy, dx) = 0; symmetric under left-right flips."""
    dist = np.hypot(dy, dx)
    name = MOTIFS[motif]
    if name == "circle":
        return dist <= r
    if name == "square":
        return np.maximum(np.abs(dy), np.abs(dx)) <= 0.7 * r
    if name == "triangle":
        return (dy <= 0.8 * r) & (np.abs(dx) <= 0.6 * (dy + r))
    if name == "cross":
        return ((np.abs(dx) <= 0.3 * r) & (np.abs(dy) <= r)) | ((np.abs(dy) <= 0.3 * r) & (np.abs(dx) <= r))
    if name == "diamond":
        return np.abs(dy) + np.abs(dx) <= 1.1 * r
    return (dist <= r) & (dist >= 0.55 * r)  # ring


def _paint_motif(rng, image, yy, xx, motif, r):
    height, width = image.shape[:2]
    cy, cx = rng.uniform(r, height - r), rng.uniform(r, width - r)
    colour = rng.uniform(215, 250) if rng.random() < 0.5 else rng.uniform(10, 45)
    image[_motif_mask(motif, yy - cy, xx - cx, r)] = colour


def _paint_blob(rng, image, yy, xx, colour, short):
    height, width = image.shape[:2]
    cy, cx = rng.uniform(0.4, 1.0) * height, rng.uniform(0, width)
    ry, rx = rng.uniform(0.04, 0.15, 2) * short
    image[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1] = colour


def _paint_box(rng, image, yy, xx, colour):
    height, width = image.shape[:2]
    y0, x0 = rng.uniform(0.3, 0.8) * height, rng.uniform(0, 0.8) * width
    h, w = rng.uniform(0.1, 0.35) * height, rng.uniform(0.1, 0.3) * width
    image[(yy >= y0) & (yy <= y0 + h) & (xx >= x0) & (xx <= x0 + w)] = colour


# ---- Files ---------------------------------------------------------------------------------

def image_id(split: str, index: int) -> str:
    return f"{split}_{index:06d}.jpg"


def write_meta_csv(path, split: str, photos: Photos) -> None:
    """Writes the Im2GPS meta format (`geoest.scene.columns.META_COLUMNS`) for one split."""
    frame = pd.DataFrame({
        "IMG_ID": [image_id(split, i) for i in range(len(photos))],
        "AUTHOR": [f"demo_author_{a:03d}" for a in photos.author],
        "LAT": np.round(photos.lat_deg, 6),
        "LON": np.round(photos.lon_deg, 6),
        "S3_Label": photos.probs3.argmax(axis=1),
        "S16_Label": photos.s16_label,
        "S365_Label": photos.s365_label,
        **{f"Prob_{c}": np.round(photos.probs3[:, i], 4) for i, c in enumerate(CONCEPTS)},
    })
    assert tuple(frame.columns) == META_COLUMNS
    tmp = pathlib.Path(f"{path}.tmp")
    frame.to_csv(tmp, index=False)
    os.replace(tmp, path)


def generate(output_dir, num_images: int = 4000, seed: int = 0, image_size: int = 96,
             progress: bool = True) -> DemoDataset:
    """Writes the demo dataset: JPEGs in <output_dir>/images, <output_dir>/{train,val,test}.csv.

    Deterministic from `seed`: the same arguments give the same files. Images already on disk
    are kept, so an interrupted run resumes (the meta CSVs are written last).

    Args:
      output_dir: folder to write into (created).
      num_images: images over all splits (75 % train, 10 % val, 15 % test).
      seed: the seed of everything.
      image_size: the shorter side in pixels; the longer side is 4/3 of it (a quarter of the
        photos are portrait).
      progress: show a tqdm bar.
    Returns:
      A `DemoDataset` naming what was written.
    """
    root = pathlib.Path(output_dir)
    image_dir = root / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    # Images on disk are reused only when they were made with the same arguments.
    stamp = root / "generator.json"
    settings = {"version": GENERATOR_VERSION, "num_images": num_images, "seed": seed,
                "image_size": image_size}
    reuse = stamp.exists() and json.loads(stamp.read_text()) == settings
    if not reuse:
        stamp.unlink(missing_ok=True)
        for old in image_dir.glob("*.jpg"):
            old.unlink()
        stamp.write_text(json.dumps(settings))
    sizes = split_sizes(num_images)
    photos = {split: sample_photos(sizes[split], seed, split) for split in SPLITS}
    long_side = int(round(image_size * 4 / 3))
    bar = tqdm(total=num_images, desc="demo photos", unit="img", disable=not progress)
    for split in SPLITS:
        p = photos[split]
        for i in range(len(p)):
            path = image_dir / image_id(split, i)
            if not path.exists():
                rng = np.random.default_rng([seed, SPLITS.index(split), i, 1])
                portrait = rng.random() < 0.25
                height, width = (long_side, image_size) if portrait else (image_size, long_side)
                pixels = render(rng, height, width, p.city[i], p.at_city[i], p.scene[i])
                tmp = path.with_suffix(".tmp")
                Image.fromarray(pixels).save(tmp, format="JPEG", quality=90)
                os.replace(tmp, path)
            bar.update(1)
    bar.close()
    meta = {split: root / f"{split}.csv" for split in SPLITS}
    for split in SPLITS:
        write_meta_csv(meta[split], split, photos[split])
    return DemoDataset(root=root, image_dir=image_dir, meta_csv=meta, num_images=sizes, photos=photos)
