"""The HTML training report: loss curves, validation metrics and the model card, in one file."""

from __future__ import annotations

import base64
import html
import io
from dataclasses import asdict
from pathlib import Path

from ..io.atomic import atomic_path


def _curves_png(history: list[dict]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    epochs = [h["epoch"] for h in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    ax1.plot(epochs, [h["train_loss"] for h in history], "o-", label="training loss")
    if any(h["val_loss"] is not None for h in history):
        ax1.plot(epochs, [h["val_loss"] for h in history], "s-", label="validation MSE (normalised)")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("loss")
    ax1.legend()
    ax1.grid(alpha=0.3)
    rmse = [h["val_rmse_k"] for h in history]
    if any(r is not None for r in rmse):
        ax2.plot(epochs, rmse, "o-", color="tab:red")
        ax2.set_ylabel("validation RMSE (K)")
    else:
        ax2.text(0.5, 0.5, "no validation dates", ha="center", va="center", transform=ax2.transAxes)
    ax2.set_xlabel("epoch")
    ax2.grid(alpha=0.3)
    for ax in (ax1, ax2):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def _fmt(value, spec: str) -> str:
    return "" if value is None else format(value, spec)


def write_report(path: Path, card, history: list[dict], config) -> Path:
    rows = "".join(
        f"<tr><td>{h['epoch']}</td><td>{_fmt(h['train_loss'], '.4f')}</td><td>{_fmt(h['val_loss'], '.4f')}</td>"
        f"<td>{_fmt(h['val_rmse_k'], '.3f')}</td><td>{_fmt(h['lr'], '.2e')}</td></tr>" for h in history)
    settings = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
                       for k, v in asdict(config).items())
    training = card.training
    best = card.validation.get("rmse_k")
    doc = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(card.title)} training report</title>
<style>body{{font-family:sans-serif;max-width:960px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}
.big{{font-size:1.4em}}</style></head><body>
<h1>{html.escape(card.title)} — training report</h1>
<p>{html.escape(card.paper)}. {card.parameters:,} parameters; inputs {", ".join(card.roles)} (Kelvin), output fine LST
(Kelvin); sizes are padded to multiples of {card.size_multiple}.</p>
<p class="big">Best epoch {training["best_epoch"]} of {training["epochs"]}:
{"validation RMSE " + f"{best:.2f} K" if best is not None else "no validation dates in the dataset"}.</p>
<img alt="loss curves" src="data:image/png;base64,{_curves_png(history)}">
<h2>Epochs</h2>
<table><tr><th>epoch</th><th>training loss</th><th>validation MSE</th><th>validation RMSE (K)</th><th>learning rate</th>
</tr>{rows}</table>
<h2>Data</h2>
<p>Dataset {html.escape(training["dataset"])}; {len(training["train_dates"])} training dates
({html.escape(", ".join(training["train_dates"][:3]))}…), {len(training["validation_dates"])} validation date(s);
grid {html.escape(str(training["grid"]["crs"]))}, {training["grid"]["width"]} × {training["grid"]["height"]} px.
Cloud-aware loss: {"yes" if training["cloud_aware"] else "no"}. Trained on {html.escape(training["device"])},
{html.escape(training["trained"])}.</p>
<h2>Settings</h2><table>{settings}</table>
</body></html>"""
    with atomic_path(path) as tmp:
        tmp.write_text(doc, encoding="utf-8")
    return path
