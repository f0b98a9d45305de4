"""The evaluation report: one self-contained HTML file (images embedded) a reader can judge at a glance.

It opens with the verdict — did each method beat resampled MODIS and the last Landsat? —
then the tables, maps of reference, predictions and errors on shared colour scales, density
scatters, error histograms, RMSE over time with the difficult dates marked, and the
breakdowns by class and by whether the reference was observed or gap-filled.
"""

from __future__ import annotations

import base64
import html
import io

import numpy as np

from ..io.dates import file_name
from ..io.lst_raster import KELVIN_OFFSET
from ..progress import Progress, ensure
from . import metrics as m

MAX_MAP_PX = 600  # maps are decimated to this many pixels on their long side
TABLE_METRICS = tuple(m.METRICS)
DIGITS = {"rmse": 3, "mae": 3, "bias": 3, "ubrmse": 3, "r2": 4, "cc": 4, "ssim": 4, "psnr": 2, "sam": 4,
          "ergas": 4}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> str:
    plt = _plt()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def _img(data: str, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _fmt(value, metric: str) -> str:
    if value is None or not np.isfinite(value):
        return "–"
    return f"{value:.{DIGITS.get(metric, 3)}f}"


def _unit(record: dict, metric: str) -> str:
    unit = record["metrics"][metric]["unit"]
    if record["metrics"][metric]["unit_dependent"]:
        scale = "°C" if record["settings"]["unit"] == "C" else "K"
        return f"{unit} ({scale})" if unit else f"({scale})"
    return unit


def _best(values: dict[str, float | None], better: str) -> float | None:
    finite = [v for v in values.values() if v is not None and np.isfinite(v)]
    if not finite:
        return None
    if better == "lower":
        return min(finite)
    if better == "higher":
        return max(finite)
    return min(finite, key=abs)


def _summary_table(record: dict, subset: str) -> str:
    table = record["summary"].get(subset, {})
    if not table:
        return ""
    head = "".join(f"<th>{html.escape(record['metrics'][k]['title'])}<br><small>{html.escape(_unit(record, k))}"
                   "</small></th>" for k in TABLE_METRICS)
    best = {k: _best({label: row[k] for label, row in table.items()}, record["metrics"][k]["better"])
            for k in TABLE_METRICS}
    body = []
    for label, row in table.items():
        cells = []
        for k in TABLE_METRICS:
            value = row[k]
            strong = value is not None and best[k] is not None and np.isclose(value, best[k])
            text = _fmt(value, k)
            cells.append(f'<td data-subset="{subset}" data-label="{html.escape(label)}" data-metric="{k}"'
                         f'{" class=best" if strong else ""}>{text}</td>')
        kind = ' class="baseline"' if row["baseline"] else ""
        body.append(f"<tr{kind}><th>{html.escape(label)}</th><td>{row['dates']}</td>{''.join(cells)}</tr>")
    return f"<table><tr><th>method</th><th>dates</th>{head}</tr>{''.join(body)}</table>"


def _over(record: dict) -> str:
    s = record["summary"]
    if s["common_dates"] == s["dates"]:
        return f"all {s['dates']} dates"
    if s["common_dates"]:
        return f"the {s['common_dates']} of {s['dates']} dates every method and baseline has"
    return "each entry's own dates (no date has every method and baseline: compare with care)"


def _date_table(record: dict) -> str:
    head = "".join(f"<th>{html.escape(record['metrics'][k]['title'])}</th>" for k in TABLE_METRICS)
    body = []
    for row in record["results"]:
        cells = "".join(f'<td data-date="{row["date"]}" data-label="{html.escape(row["label"])}" data-metric="{k}">'
                        f"{_fmt(row[k], k)}</td>" for k in TABLE_METRICS)
        kind = ' class="baseline"' if row["baseline"] else ""
        flag = " ⚠" if row["difficult"] else ""
        body.append(f"<tr{kind}><td>{row['date']}{flag}</td><th>{html.escape(row['label'])}</th>"
                    f"<td>{row['coverage']:.1%}</td><td>{row['n']:,}</td>{cells}</tr>")
    return (f"<table><tr><th>date</th><th>method</th><th>coverage</th><th>pixels</th>{head}</tr>"
            f"{''.join(body)}</table>")


def pooled(record: dict, kind: str) -> dict[str, dict[str, dict[str, float]]]:
    """RMSE, bias and pixels per group and entry, pooled over the summary's dates (weighted by pixels)."""
    acc: dict[str, dict[str, list[float]]] = {}
    common = set(record["summary"]["common"])
    for row in record["results"]:
        if common and row["date"] not in common:
            continue
        for group, s in row.get(kind, {}).items():
            if not s["n"]:
                continue
            a = acc.setdefault(group, {}).setdefault(row["label"], [0.0, 0.0, 0])
            a[0] += s["rmse"] ** 2 * s["n"]
            a[1] += s["bias"] * s["n"]
            a[2] += s["n"]
    return {group: {label: {"rmse": (a[0] / a[2]) ** 0.5, "bias": a[1] / a[2], "n": a[2]}
                    for label, a in by_label.items()} for group, by_label in sorted(acc.items())}


def _breakdown_table(record: dict, kind: str, what: str) -> str:
    table = pooled(record, kind)
    if not table:
        return ""
    labels = list(record["summary"]["all"])
    head = "".join(f"<th>{html.escape(label)}<br><small>RMSE / bias (K)</small></th>" for label in labels)
    body = []
    for group, by_label in table.items():
        n = max(v["n"] for v in by_label.values())
        cells = "".join(
            f'<td data-{kind}="{html.escape(group)}" data-label="{html.escape(label)}">'
            f"{by_label[label]['rmse']:.2f} / {by_label[label]['bias']:+.2f}</td>" if label in by_label
            else "<td>–</td>" for label in labels)
        body.append(f"<tr><th>{html.escape(group)}</th><td>{n:,}</td>{cells}</tr>")
    return f"<table><tr><th>{what}</th><th>pixels</th>{head}</tr>{''.join(body)}</table>"


def _calibration_table(record: dict) -> str:
    rows = {}
    for row in record["results"]:
        if "within_1sigma" in row:
            rows.setdefault(row["label"], []).append(row)
    if not rows:
        return ""
    body = "".join(
        f"<tr><th>{html.escape(label)}</th><td>{len(r)}</td>"
        f"<td>{np.mean([x['mean_sigma'] for x in r]):.2f}</td>"
        f"<td>{np.mean([x['within_1sigma'] for x in r]):.1%}</td>"
        f"<td>{np.mean([x['within_2sigma'] for x in r]):.1%}</td></tr>" for label, r in rows.items())
    return ("<table><tr><th>method</th><th>dates</th><th>mean σ (K)</th><th>|error| ≤ σ</th><th>|error| ≤ 2σ</th>"
            f"</tr>{body}</table>")


def _verdict(record: dict) -> str:
    table = record["summary"]["all"]
    baselines = {k: v for k, v in table.items() if v["baseline"]}
    lines = []
    for label, row in table.items():
        if row["baseline"]:
            continue
        parts = []
        for base, b in baselines.items():
            if b["rmse"] and row["rmse"] is not None:
                gain = 1 - row["rmse"] / b["rmse"]
                word = "below" if gain >= 0 else "above"
                parts.append(f"{abs(gain):.0%} {word} {html.escape(base)} ({b['rmse']:.2f} K)")
        beaten = [base for base, b in baselines.items() if row["rmse"] is not None and b["rmse"] is not None
                  and row["rmse"] >= b["rmse"]]
        verdict = ("<b class=bad>does not beat " + html.escape(" nor ".join(beaten)) + "</b>") if beaten \
            else ("<b class=good>beats every baseline</b>" if baselines else "")
        lines.append(f"<li><b>{html.escape(label)}</b>: mean RMSE {row['rmse']:.2f} K"
                     f"{' — ' + ', '.join(parts) if parts else ''}; {verdict}.</li>")
    if not baselines:
        lines.append("<li>No baseline could be computed: give the MODIS series (on the fine grid) and the Landsat "
                     "series the fusion used.</li>")
    return f"<ul class=verdict>{''.join(lines)}</ul>"


def _decimate(a: np.ndarray) -> np.ndarray:
    step = max(1, int(np.ceil(max(a.shape) / MAX_MAP_PX)))
    return a[::step, ::step]


def _shown(a: np.ndarray, unit: str) -> np.ndarray:
    """Kelvin values as the report shows them (``unit`` 'K' or 'C')."""
    return a - KELVIN_OFFSET if unit == "C" else a


def _maps_png(entry: dict, baselines: set[str], unit: str = "K") -> str:
    """Reference and every entry on one LST scale (``unit``); their errors on one diverging scale centred on 0."""
    plt = _plt()
    from matplotlib.colors import TwoSlopeNorm

    ref = _shown(_decimate(entry["reference"].read().data), unit)
    images = {label: _shown(_decimate(item.read().data), unit) for label, item in entry["entries"].items()}
    lo, hi = np.nanpercentile(ref, [2, 98]) if np.isfinite(ref).any() else (0, 1)
    errors = {label: a - ref for label, a in images.items()}
    # The error scale is set by the methods (baselines may saturate it: the colour bar says so), so a
    # baseline's large errors do not wash out the differences between methods.
    scored = [e for label, e in errors.items() if label not in baselines] or list(errors.values())
    spread = np.concatenate([np.abs(e[np.isfinite(e)]) for e in scored] or [np.zeros(1)])
    lim = float(np.percentile(spread, 98)) if spread.size else 1.0
    lim = lim if lim > 0 else 1.0
    n = len(images) + 1
    fig, axes = plt.subplots(2, n, figsize=(3.1 * n, 6.2), squeeze=False)
    im = axes[0, 0].imshow(ref, cmap="inferno", vmin=lo, vmax=hi)
    axes[0, 0].set_title("reference", fontsize=10)
    axes[1, 0].text(0.5, 0.5, "error =\nprediction − reference", ha="center", va="center", fontsize=10)
    axes[1, 0].axis("off")
    for col, (label, a) in enumerate(images.items(), start=1):
        axes[0, col].imshow(a, cmap="inferno", vmin=lo, vmax=hi)
        axes[0, col].set_title(label, fontsize=10)
        em = axes[1, col].imshow(errors[label], cmap="RdBu_r", norm=TwoSlopeNorm(0.0, -lim, lim))
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=axes[0, :].tolist(), shrink=0.8, label=f"LST ({'°C' if unit == 'C' else 'K'})")
    if images:
        fig.colorbar(em, ax=axes[1, :].tolist(), shrink=0.8, label="error (K)", extend="both")
    return _png(fig)


def _scatter_png(samples: dict[str, np.ndarray], unit: str = "K") -> str:
    plt = _plt()
    samples = {label: _shown(s, unit) for label, s in samples.items()}
    symbol = "°C" if unit == "C" else "K"
    n = len(samples)
    cols = min(n, 4)
    rows = int(np.ceil(n / cols))
    both = np.concatenate(list(samples.values()), axis=1)
    lo, hi = np.percentile(both, [0.5, 99.5])
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 3.3 * rows), squeeze=False)
    for ax, (label, s) in zip(axes.ravel(), samples.items()):
        ax.hexbin(s[1], s[0], gridsize=60, extent=(lo, hi, lo, hi), bins="log", cmap="viridis", mincnt=1)
        ax.plot([lo, hi], [lo, hi], "r-", lw=1, label="1:1")
        ax.set_title(label, fontsize=10)
        ax.set_xlabel(f"reference ({symbol})")
        ax.set_ylabel(f"predicted ({symbol})")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_aspect("equal")
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    fig.tight_layout()
    return _png(fig)


def _histogram_png(samples: dict[str, np.ndarray]) -> str:
    plt = _plt()
    errors = {label: s[0] - s[1] for label, s in samples.items()}
    lim = float(np.percentile(np.abs(np.concatenate(list(errors.values()))), 99.5)) or 1.0
    fig, ax = plt.subplots(figsize=(7.5, 3.4))
    bins = np.linspace(-lim, lim, 81)
    for label, e in errors.items():
        ax.hist(e, bins=bins, histtype="step", density=True, lw=1.5,
                ls="--" if label.startswith(("MODIS", "Persistence")) else "-", label=label)
    ax.axvline(0, color="k", lw=0.8)
    ax.set_xlabel("error = prediction − reference (K)")
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _png(fig)


def _timeline_png(record: dict) -> str:
    plt = _plt()
    import datetime as dt

    from matplotlib.dates import DateFormatter

    fig, ax = plt.subplots(figsize=(8.5, 3.4))
    labels = list(dict.fromkeys([*record["summary"]["all"], *(r["label"] for r in record["results"])]))
    for label in labels:
        rows = [r for r in record["results"] if r["label"] == label]
        ax.plot([dt.date.fromisoformat(r["date"]) for r in rows], [r["rmse"] for r in rows],
                "o--" if rows[0]["baseline"] else "o-", label=label, ms=4)
    for d in record["dates"]:
        if d["difficult"]:
            day = dt.date.fromisoformat(d["date"])
            ax.axvspan(day - dt.timedelta(days=2), day + dt.timedelta(days=2), color="orange", alpha=0.25, lw=0)
    ax.set_ylabel("RMSE (K)")
    ax.xaxis.set_major_formatter(DateFormatter("%Y-%m-%d"))
    fig.autofmt_xdate()
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, title="orange: difficult dates", title_fontsize=8)
    fig.tight_layout()
    return _png(fig)


DEFINITIONS = """<dl>
<dt>Pixels</dt><dd>Every entry of a date is scored on the same pixels: valid in the reference and in every
entry (coverage: the share of the reference's valid pixels an entry predicted).</dd>
<dt>RMSE, MAE, bias, ubRMSE</dt><dd>√mean(e²), mean|e|, mean(e) with e = prediction − reference (positive
bias: too warm), √(RMSE² − bias²). Kelvin; identical in °C.</dd>
<dt>R², CC</dt><dd>1 − Σe² / Σ(r − r̄)² (can be negative); Pearson correlation.</dd>
<dt>PSNR</dt><dd>10·log10(R²/MSE), R = max − min of the reference on the date.</dd>
<dt>SSIM</dt><dd>Wang et al. (2004): Gaussian window σ = 1.5 (11 × 11), K1 = 0.01, K2 = 0.03, data range R;
nodata excluded by normalised Gaussian averages; mean over valid pixels ≥ 5 px from the border.</dd>
<dt>SAM</dt><dd>Angle in degrees between prediction and reference taken as vectors of their pixels.</dd>
<dt>ERGAS</dt><dd>100·(h/l)·√mean_b(RMSE_b/μ_b)², h/l the fine/coarse pixel-size ratio, μ the mean reference.</dd>
<dt>Difficult date</dt><dd>The mean absolute change between the reference and the last Landsat before it
(persistence) is at least the threshold.</dd></dl>"""

STYLE = """body{font-family:sans-serif;max-width:1200px;margin:2em auto;color:#222;padding:0 1em}
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}td,th{border:1px solid #ccc;padding:3px 7px;
text-align:right}th{text-align:left}tr.baseline{color:#555;font-style:italic;background:#f6f6f6}
td.best{font-weight:bold;background:#e3f2e1}.good{color:#1b7a1b}.bad{color:#b3261e}img{max-width:100%}
.verdict li{margin:0.3em 0}dt{font-weight:bold;margin-top:0.4em}small{font-weight:normal;color:#666}"""


def write_report(path, record: dict, samples: dict[str, np.ndarray], maps: list[dict],
                 progress: Progress | None = None) -> None:
    """Write the HTML report of an evaluation ``record`` (the content of metrics.json)."""
    progress = ensure(progress)
    settings = record["settings"]
    dates = record["dates"]
    difficult = [d for d in dates if d["difficult"]]
    sections = [f"<h1>Fusion evaluation — {len(dates)} date{'s' if len(dates) > 1 else ''}</h1>",
                f"<p>{html.escape(dates[0]['date'])} to {html.escape(dates[-1]['date'])}; reference "
                f"{html.escape(', '.join(d['reference'] for d in dates[:3]))}{'…' if len(dates) > 3 else ''}. "
                f"SSIM, SAM and ERGAS in {'°C' if settings['unit'] == 'C' else 'K'}; ERGAS h/l = "
                f"{settings['resolution_ratio']:.4f}. {len(difficult)} difficult date(s) "
                f"(change ≥ {settings['difficult_change_k']:g} K since the last Landsat, or declared by the "
                "sample data)" + "".join(f"; {html.escape(d['date'])}: {html.escape(d['why'])}"
                                         for d in difficult) + ".</p>",
                "<h2>Did fusion add anything?</h2>", _verdict(record),
                f"<h2>Mean over {_over(record)}</h2>", _summary_table(record, "all")]
    if difficult and len(difficult) < len(dates):
        sections += ["<h2>Difficult dates</h2>", _summary_table(record, "difficult"),
                     "<h2>Other dates</h2>", _summary_table(record, "other")]
    if len(dates) > 1:
        sections += ["<h2>RMSE over time</h2>", _img(_timeline_png(record), "RMSE over time")]
    progress.update(0.3)
    baselines = {r["label"] for r in record["results"] if r["baseline"]}
    for entry in maps:
        if entry["difficult"]:
            tag = f" — difficult: {html.escape(entry['why'])}"
        else:
            tag = f", mean change since the last Landsat {entry['change_k']:.1f} K" if entry["change_k"] else ""
        sections += [f"<h2>Maps of {entry['date']}{tag}</h2>",
                     _img(_maps_png(entry, baselines, record["settings"]["unit"]), f"maps of {entry['date']}"),
                     f"<p><small>Reference {html.escape(file_name(entry['reference'].path))}. One LST scale "
                     "(2–98 % of the reference) for all maps; one error scale centred on 0.</small></p>"]
    progress.update(0.7)
    order = list(record["summary"]["all"])
    samples = {k: samples[k] for k in sorted(samples, key=lambda k: order.index(k) if k in order else len(order))}
    if samples:
        sections += ["<h2>Predicted against reference</h2>",
                     _img(_scatter_png(samples, record["settings"]["unit"]), "density scatter"),
                     "<h2>Error distribution</h2>", _img(_histogram_png(samples), "error histogram")]
    classes = _breakdown_table(record, "classes", "class")
    if classes:
        sections += ["<h2>By land-cover class</h2>", classes]
    status = _breakdown_table(record, "reference_status", "reference pixel")
    if status:
        sections += ["<h2>Observed or gap-filled reference</h2>",
                     "<p>Gap-filled reference pixels carry the gap-filler's own error.</p>", status]
    calibration = _calibration_table(record)
    if calibration:
        sections += ["<h2>Is the uncertainty right?</h2>",
                     "<p>Share of pixels whose error lies within the stated 1σ and 2σ: a calibrated band "
                     "holds about 68 % and 95 %.</p>", calibration]
    sections += ["<h2>Every date</h2>", _date_table(record), "<h2>Definitions</h2>", DEFINITIONS]
    doc = ("<!doctype html><html lang='en'><head><meta charset='utf-8'><title>LST fusion evaluation</title>"
           f"<style>{STYLE}</style></head><body>{''.join(sections)}"
           "<p><small>LST Fusion; numbers also in metrics.json and metrics.csv beside this file.</small></p>"
           "</body></html>")
    path.write_text(doc, encoding="utf-8")
    progress.update(1.0)
