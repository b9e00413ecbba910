"""§4 reporting: what the scores of an evaluation or a calibration look like to people, as files and
printed lines: the results files, a table laid out like Table 6, accuracy-versus-distance,
reliability and accuracy-coverage plots, and maps of answers and cells. Nothing here measures:
`geoest.inference.evaluation` and `geoest.inference.temperature_fit` hand it their figures.
"""
import dataclasses
import json
import pathlib

import numpy as np
from matplotlib.collections import PolyCollection
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from geoest.files import atomic_path, write_text
from geoest.geo.calibration_metrics import ranking_curves
from geoest.geo.distance import EARTH_RADIUS_KM, THRESHOLDS_KM  # 1, 25, 200, 750, 2500 km (Table 6)
from geoest.geo.how_sure import evaluation_lines
from geoest.geo.landmask import land_mask
from geoest.geo.scoring import write_results_csv
from geoest.inference.core import HIERARCHY
from geoest.inference.geojson import cell_ring
from geoest.scene.places365 import CONCEPTS

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
    radii = np.logspace(-1, np.log10(20_040), 400)   # 100 m to half the Earth's circumference
    fig = Figure(figsize=(8, 5))
    ax = fig.subplots()
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


MAX_CIRCLE_KM = 3000


def draw_land(ax, step: int = 2) -> None:
    """Draws the land (`geoest.geo.landmask`, 1/8 degree, every `step`-th cell) on an equirectangular
    axes in [-180, 180] x [-90, 90], below everything else."""
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
    fig = Figure(figsize=(12, 6.4))
    ax = fig.subplots()
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


def plot_cells(partitioning, path, points_per_edge: int = 4) -> None:
    """PNG world map (equirectangular) of a partitioning's S2 cells, coloured by images per cell.

    Args:
      partitioning: `geoest.geo.Partitioning`.
      path: output PNG file.
      points_per_edge: samples along each geodesic cell edge.
    """
    rings, counts = [], []
    for vertices, count in zip(partitioning.polygons(), partitioning.counts):
        ring = np.asarray(cell_ring(vertices, points_per_edge))
        for shift in (-360, 0, 360):   # unwrapped rings past ±180 show on both sides of the map
            shifted = ring + [shift, 0]
            if shifted[:, 0].min() < 180 and shifted[:, 0].max() > -180:
                rings.append(shifted)
                counts.append(count)
    fig = Figure(figsize=(12, 6.4))
    ax = fig.subplots()
    draw_land(ax)
    cells = PolyCollection(rings, array=np.log10(np.asarray(counts, np.float64)), cmap="viridis",
                           edgecolors="k", linewidths=0.1, alpha=0.85, zorder=1)
    ax.add_collection(cells)
    fig.colorbar(cells, ax=ax, shrink=0.7, label="log10 images per cell")
    ax.set(xlim=(-180, 180), ylim=(-90, 90), aspect="equal", xlabel="longitude", ylabel="latitude",
           title=f"{partitioning.name}: {len(partitioning):,} cells, {int(partitioning.counts.sum()):,} images")
    fig.tight_layout()
    fig.savefig(path, dpi=150)


def plot_ranking_curves(dist_km, p_within, radii_km, path, title: str = "", draws: int = 200) -> None:
    """PNG of the accuracy within each R against the fraction of photos answered, ranked by P(error <= R)
    (most confident first), beside the band of random orders (2.5-97.5 %) and the oracle (ranked by
    the true error); `geoest.geo.calibration_metrics.ranking_curves`.

    Args:
      dist_km: float [N] errors in km; p_within: float [N, K] P(error <= R) per radius; radii_km: [K].
      path: output PNG file.
    """
    fig = Figure(figsize=(7, 5))
    ax = fig.subplots()
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


def plot_reliability(summaries: dict, path, title: str = "") -> None:
    """PNG reliability diagram: accuracy of the top cell against its predicted probability per bin.

    Args:
      summaries: {label: `confidence_summary` dict} (e.g. "before", "after").
    """
    fig = Figure(figsize=(5.5, 5.5))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="perfectly calibrated")
    for label, summary in summaries.items():
        bins = summary["reliability"]
        used = np.asarray(bins["count"]) > 0
        ax.plot(np.asarray(bins["confidence"])[used], np.asarray(bins["accuracy"])[used], marker="o",
                label=f"{label} (ECE {summary['ece']:.3f})")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="predicted probability of the top cell",
           ylabel="fraction whose top cell holds the true location", title=title)
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def report_lines(report: dict) -> list:
    """Readable lines of a calibration report (or of evaluate's confidence summary)."""
    lines = []
    if "temperatures" in report:
        lines.append("temperatures: " + ", ".join(f"{k} {v:.3f}" for k, v in report["temperatures"].items()))
    for key in ("before", "after"):
        if key not in report:
            continue
        s = report[key]
        cells = ", ".join(f"{float(k.replace('_', '.')) / 100:g} {v:.1%}" for k, v in s["cell_coverage"].items())
        lines.append(f"{key + ' temperature scaling:':28s} true cell in the region's cells (mass {cells}); "
                     f"ECE of the top cell's probability {s['ece']:.3f}")
    return lines


def output_label(output: str) -> str:
    """How Table 3 writes an output: f* for the hierarchy, else the partitioning's name."""
    return "f*" if output == HIERARCHY else output


@dataclasses.dataclass
class MethodReport:
    """What an evaluation measured of one method (`geoest.inference.evaluation`) over N test photos.

    name: the method's; main: its main output (f* or its only partitioning).
    predicted: {output: (lat [N], lon [N]) degrees} its answers; dist_km: {output: float [N] km} their errors.
    summary: its summary.json entry ({output: {"all": summarize(...), concept: ...}, ...}).
    how_sure: its confidence.json entry ("before", "after", "skipped_nan", "within").
    ranking: (float [N] error of the fine answer in km, float [N, K] P(error <= R) of the ranked variant).
    """
    name: str
    main: str
    predicted: dict
    dist_km: dict
    summary: dict
    how_sure: dict
    ranking: tuple

    @property
    def label(self) -> str:
        return f"{self.name} ({output_label(self.main)})"


def write_evaluation(output_dir, ids, lat_deg, lon_deg, scene, reports, reference: str | None = None) -> tuple:
    """Writes an evaluation's files (see `geoest.inference.evaluation`): per method results_<output>.csv
    in the published layout, reliability.png and accuracy_coverage.png; table6.txt, summary.json,
    confidence.json and accuracy.png. Each is written whole (temporary name, then renamed).

    Args:
      ids: [N] photo ids; lat_deg, lon_deg: float [N] true locations; scene: int [N] S3 concept (-1 unknown).
      reports: list of `MethodReport`.
      reference: "im2gps" / "im2gps3k": the paper's Table 6 rows listed below.
    Returns:
      (the table, the per-scene tables and scene accuracies) as `print_evaluation` prints them.
    """
    output_dir = pathlib.Path(output_dir)
    for report in reports:
        folder = output_dir / report.name
        folder.mkdir(exist_ok=True)
        for output, (pred_lat, pred_lon) in report.predicted.items():
            with atomic_path(folder / f"results_{output}.csv") as tmp:
                write_results_csv(tmp, ids, lat_deg, lon_deg, pred_lat, pred_lon)
        title = f"{report.label}, {len(ids)} photos"
        with atomic_path(folder / "reliability.png") as tmp:
            plot_reliability({v: report.how_sure[v] for v in ("before", "after") if v in report.how_sure}, tmp,
                             title=title)
        within = report.how_sure["within"]
        with atomic_path(folder / "accuracy_coverage.png") as tmp:
            plot_ranking_curves(*report.ranking, THRESHOLDS_KM, tmp,
                                title=f"{title}, ranked by P(error <= R) ({within['ranked']}; W_R from the "
                                      f"{within['weights']})")
    tables = evaluation_tables(reports, scene, reference)
    write_text(output_dir / "table6.txt", tables[0] + "\n" + tables[1] + "\n")
    write_text(output_dir / "summary.json", json.dumps({r.name: r.summary for r in reports}, indent=2) + "\n")
    write_text(output_dir / "confidence.json", json.dumps({r.name: r.how_sure for r in reports}, indent=1) + "\n")
    curves = {f"{r.name} ({output_label(o)})": dist for r in reports for o, dist in r.dist_km.items()}
    with atomic_path(output_dir / "accuracy.png") as tmp:
        plot_accuracy(curves, tmp, title=f"{len(ids)} test images")
    return tables


def evaluation_tables(reports, scene, reference: str | None = None) -> tuple:
    """(Table 6 of every method and output, the tables per S3 concept (Table 4) with the MTNs' scene
    top-1 accuracy after them) as text; `scene`: int [N] S3 concept of the photos (-1 unknown)."""
    rows = [(f"{r.name} ({output_label(o)})", r.summary[o]["all"]) for r in reports for o in r.dist_km]
    scene_tables = [f"\n{concept} ({int((scene == i).sum())} images):\n"
                    + table6([(f"{r.name} ({output_label(o)})", r.summary[o][concept])
                              for r in reports for o in r.dist_km])
                    for i, concept in enumerate(CONCEPTS) if (scene == i).any()]
    scene_tables += [f"\n{r.name} scene top-1 ({a['level']}, §3.3 MTN): "
                     + (f"{100 * a['top1']:.1f} % of {a['count']} labelled images" if a["count"]
                        else "no labelled images")
                     for r in reports if "scene_accuracy" in r.summary for a in [r.summary["scene_accuracy"]]]
    return table6(rows, reference), "".join(scene_tables)


def print_evaluation(tables: tuple, reports, skipped_nan: list, closing: str) -> None:
    """Prints an evaluation: its tables (`evaluation_tables`), how sure each method is, the photos
    left out for NaN probabilities and the closing line (photos scored and skipped)."""
    print(tables[0])
    print(tables[1])
    for report in reports:
        print(f"{report.label}, how sure:")
        print("\n".join("  " + line for line in report_lines(report.how_sure)))
        print("\n".join("  " + line for line in evaluation_lines(report.how_sure["within"])))
    if skipped_nan:
        print(f"skipped {len(skipped_nan)} photo(s) whose probabilities hold NaN: {', '.join(skipped_nan[:20])}")
    print(closing)
