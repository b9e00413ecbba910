"""§4 reporting: a table laid out like Table 6 and an accuracy-versus-distance plot."""
import numpy as np

from geoest.geo.distance import THRESHOLDS_KM  # 1, 25, 200, 750, 2500 km (Table 6)
from geoest.geo.within import ranking_curves

SCALES = ("Street", "City", "Region", "Country", "Continent")

# Table 6 of the paper, geoest's own rows (GCD accuracy in % at 1 / 25 / 200 / 750 / 2500 km).
PAPER_TABLE6 = {
    "im2gps": {
        "base-vgg_c(L, m)": (7.6, 22.8, 35.0, 50.6, 66.7),
        "base-vgg(L, m)": (8.9, 26.6, 36.7, 50.6, 65.8),
        "base(L, m)": (13.5, 36.3, 50.6, 64.1, 79.7),
        "base(M, m)": (13.5, 35.0, 49.8, 64.1, 79.7),
        "base(M, f*)": (15.2, 40.9, 51.5, 65.4, 78.5),
        "ISNs(M, f*, S3)": (16.9, 43.0, 51.9, 66.7, 80.2),
    },
    "im2gps3k": {
        "base-vgg_c(L, m)": (4.2, 14.6, 22.2, 34.4, 54.2),
        "base-vgg(L, m)": (4.8, 16.5, 22.6, 34.5, 54.4),
        "base(L, m)": (8.3, 24.9, 34.0, 48.8, 65.8),
        "base(M, m)": (8.2, 25.5, 35.1, 48.7, 65.2),
        "base(M, f*)": (9.7, 27.0, 35.6, 49.2, 66.0),
        "ISNs(M, f*, S3)": (10.5, 28.0, 36.6, 49.7, 66.0),
    },
}


def table6(rows, reference: str | None = None) -> str:
    """Text table laid out like Table 6.

    Args:
      rows: list of (method name, summary) where summary is `geoest.geo.scoring.summarize`'s dict
        ({"count", "accuracy": {"1": fraction, ...}, "median_km", ...}).
      reference: "im2gps" or "im2gps3k" to list the paper's rows below for comparison.
    Returns:
      the table as one string (method, % within each radius, image count, median km).
    """
    header = ["Method"] + [f"{s} {t:,} km" for s, t in zip(SCALES, THRESHOLDS_KM)] + ["N", "median km"]
    lines = [[name] + [f"{100 * summary['accuracy'][str(t)]:.1f} %" for t in THRESHOLDS_KM]
             + [str(summary["count"]), f"{summary['median_km']:.0f}"] for name, summary in rows]
    if reference:
        lines.append([f"paper, {reference}:"] + [""] * (len(header) - 1))
        lines += [[f"  {name}"] + [f"{v:.1f} %" for v in values] + ["", ""]
                  for name, values in PAPER_TABLE6[reference].items()]
    widths = [max(len(r[i]) for r in [header] + lines) for i in range(len(header))]
    fmt = lambda r: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
    return "\n".join([fmt(header), "  ".join("-" * w for w in widths)] + [fmt(r) for r in lines])


def plot_accuracy(curves, path, title: str = "") -> None:
    """PNG of the fraction of images within d km against d (log scale), one line per method.

    Args:
      curves: dict method name -> float [N] great-circle errors in km.
      path: output PNG file.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    radii = np.logspace(-1, np.log10(20_040), 400)   # 100 m to half the Earth's circumference
    fig, ax = plt.subplots(figsize=(8, 5))
    for name, dist_km in curves.items():
        dist_km = np.sort(np.asarray(dist_km, np.float64))
        ax.plot(radii, 100 * np.searchsorted(dist_km, radii, side="right") / max(len(dist_km), 1), label=name)
    for t, scale in zip(THRESHOLDS_KM, SCALES):
        ax.axvline(t, color="0.8", lw=0.8, zorder=0)
        ax.text(t, 101, f"{scale}\n{t:,} km", ha="center", va="bottom", fontsize=7, color="0.4")
    ax.set(xscale="log", xlim=(radii[0], radii[-1]), ylim=(0, 100), xlabel="great-circle distance (km)",
           ylabel="images localised within distance (%)")
    ax.set_title(title, pad=28)
    ax.grid(True, which="major", axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


MAX_CIRCLE_KM = 3000


def draw_land(ax, step: int = 2) -> None:
    """Draws the land (`geoest.geo.landmask`, 1/8 degree, every `step`-th cell) on an equirectangular
    axes in [-180, 180] x [-90, 90], below everything else."""
    from matplotlib.colors import ListedColormap

    from geoest.geo.landmask import land_mask

    ax.imshow(land_mask()[::step, ::step], extent=(-180, 180, -90, 90), origin="upper", interpolation="nearest",
              cmap=ListedColormap(["#dfe9f2", "#c9c3b4"]), vmin=0, vmax=1, zorder=0)


def plot_map(features, path, title: str = "") -> None:
    """PNG world map of GeoJSON features (`geoest.inference.geojson`) over the land: polygons
    outlined, points as dots, a point's "radius_km_*" properties as circles around it (those
    below MAX_CIRCLE_KM; wider ones do not read on a flat map).

    Args:
      features: list of GeoJSON Feature dicts (Point and Polygon geometries).
      path: output PNG file.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from geoest.geo.distance import EARTH_RADIUS_KM

    fig, ax = plt.subplots(figsize=(12, 6.4))
    draw_land(ax)
    for feature in features:
        geometry = feature["geometry"]
        if geometry["type"] == "Polygon":
            ring = np.asarray(geometry["coordinates"][0])
            for shift in (-360, 0, 360):
                ax.plot(ring[:, 0] + shift, ring[:, 1], color="tab:blue", lw=0.6, alpha=0.8)
    for feature in features:
        if feature["geometry"]["type"] != "Point":
            continue
        lon, lat = feature["geometry"]["coordinates"]
        ax.plot(lon, lat, "o", color="tab:red", ms=3, zorder=3)
        for key, radius in feature["properties"].items():
            if key.startswith("radius_km_") and radius < MAX_CIRCLE_KM:
                # a circle of great-circle radius r, drawn from its points at every bearing
                bearing = np.linspace(0, 2 * np.pi, 90)
                d = radius / EARTH_RADIUS_KM
                lat1, lon1 = np.radians(lat), np.radians(lon)
                lat2 = np.arcsin(np.sin(lat1) * np.cos(d) + np.cos(lat1) * np.sin(d) * np.cos(bearing))
                lon2 = lon1 + np.arctan2(np.sin(bearing) * np.sin(d) * np.cos(lat1),
                                         np.cos(d) - np.sin(lat1) * np.sin(lat2))
                ax.plot(np.degrees(np.unwrap(lon2)), np.degrees(lat2), color="tab:red", lw=0.5, alpha=0.5)
    ax.set(xlim=(-180, 180), ylim=(-90, 90), aspect="equal", xlabel="longitude", ylabel="latitude", title=title)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def plot_cells(partitioning, path, points_per_edge: int = 4) -> None:
    """PNG world map (equirectangular) of a partitioning's S2 cells, coloured by images per cell.

    Args:
      partitioning: `geoest.geo.Partitioning`.
      path: output PNG file.
      points_per_edge: samples along each geodesic cell edge.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import PolyCollection

    from geoest.inference.geojson import cell_ring

    rings, counts = [], []
    for vertices, count in zip(partitioning.polygons(), partitioning.counts):
        ring = np.asarray(cell_ring(vertices, points_per_edge))
        for shift in (-360, 0, 360):   # unwrapped rings past ±180 show on both sides of the map
            shifted = ring + [shift, 0]
            if shifted[:, 0].min() < 180 and shifted[:, 0].max() > -180:
                rings.append(shifted)
                counts.append(count)
    fig, ax = plt.subplots(figsize=(12, 6.4))
    draw_land(ax)
    cells = PolyCollection(rings, array=np.log10(np.asarray(counts, np.float64)), cmap="viridis",
                           edgecolors="k", linewidths=0.1, alpha=0.85, zorder=1)
    ax.add_collection(cells)
    fig.colorbar(cells, ax=ax, shrink=0.7, label="log10 images per cell")
    ax.set(xlim=(-180, 180), ylim=(-90, 90), aspect="equal", xlabel="longitude", ylabel="latitude",
           title=f"{partitioning.name}: {len(partitioning):,} cells, {int(partitioning.counts.sum()):,} images")
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)


def plot_ranking_curves(dist_km, p_within, radii_km, path, title: str = "", draws: int = 200) -> None:
    """PNG of the accuracy within each R against the fraction of photos answered, ranked by P(error <= R)
    (most confident first), beside the band of random orders (2.5-97.5 %) and the oracle (ranked by
    the true error); `geoest.geo.within.ranking_curves`.

    Args:
      dist_km: float [N] errors in km; p_within: float [N, K] P(error <= R) per radius; radii_km: [K].
      path: output PNG file.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    for k, radius in enumerate(radii_km):
        curves = ranking_curves(dist_km, np.asarray(p_within)[:, k], radius, draws=draws)
        x = 100 * curves["coverage"]
        line, = ax.plot(x, 100 * curves["accuracy"],
                        label=f"{radius:,g} km (area {100 * curves['area']:.1f} %, random "
                              f"{100 * curves['random_area_mean']:.1f} %, oracle {100 * curves['oracle_area']:.1f} %)")
        ax.fill_between(x, 100 * curves["random_low"], 100 * curves["random_high"], color=line.get_color(), alpha=0.15)
        ax.plot(x, 100 * curves["oracle"], color=line.get_color(), linestyle=":", linewidth=1)
    ax.set(xlim=(0, 100), ylim=(0, 100), xlabel="photos answered, most confident first by P(error <= R) (%)",
           ylabel="answered photos within R (%)")
    ax.set_title(title + "\nshaded: random orders (2.5-97.5 %); dotted: the oracle", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
