"""The probe figure: for one method after task k, every probed image with its overlay and its map
after every task since its own, one symmetric colour scale per image shared over those maps.

Drawn as one mosaic image in a single matplotlib axes (cells coloured with the colour map here,
colour bars as gradient strips with their ticks as text): a grid of ~100 matplotlib axes took
seconds per figure, which made the figures, not the attributions, the cost of the probes.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from torch import Tensor  # noqa: E402

CMAP = plt.get_cmap("bwr")  # diverging: red evidence for the explained class, blue against, white none
EMPTY = np.array([0.93, 0.93, 0.93])


@dataclass
class ProbedImage:
    """One row: the image (pixels in [0, 1], `[C, H, W]`), its task and label, and per task end
    since its own task (keys m >= task) the map `[1, H, W]`, the prediction and the explained class."""

    pixels: Tensor
    task: int
    label: int
    maps: dict[int, Tensor]
    predictions: dict[int, int]
    targets: dict[int, int]
    overlay: Tensor  # what the overlay column lays over the image after the current task


def symmetric_scale(values: list[Tensor]) -> float:
    """max |value| over all maps of one image (0 when all are zero)."""
    return max((float(v.abs().max()) for v in values), default=0.0)


def _rgb(pixels: Tensor) -> np.ndarray:
    image = pixels.clamp(0, 1).permute(1, 2, 0).numpy()
    return np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image[..., :3]


def coloured(values: Tensor, scale: float) -> np.ndarray:
    """`[1, H, W]` values through the diverging colour map on [-scale, scale] (RGB)."""
    normalised = values[0].numpy() / (scale or 1.0) * 0.5 + 0.5
    return CMAP(np.clip(normalised, 0, 1))[..., :3]


def overlaid(pixels: Tensor, values: Tensor, scale: float) -> np.ndarray:
    """The grey image with the coloured map on top, opaque where |value| nears `scale`."""
    grey = np.repeat(pixels.clamp(0, 1).mean(dim=0).numpy()[..., None], 3, axis=2)
    alpha = np.clip(np.abs(values[0].numpy()) / (scale or 1.0), 0, 1)[..., None] * 0.85
    return grey * (1 - alpha) + coloured(values, scale) * alpha


class Mosaic:
    """Cells of `h` x `w` pixels on a white canvas (`cells` cell widths wide), a wrapped title on
    top, and text placed in canvas coordinates; saved with one imshow."""

    def __init__(self, rows: int, cells: float, h: int, w: int, title: str, inches_per_cell: float = 0.85) -> None:
        self.h, self.w = h, w
        self.gap_x, self.gap_y = max(2, w // 6), max(6, int(h * 0.5))
        width = int(cells * (w + self.gap_x))
        self.inch = inches_per_cell / (w + self.gap_x)  # inches per canvas pixel
        line = 0.14 / self.inch  # one 7 pt text line, in canvas pixels
        self.title = textwrap.fill(title, max(30, int(width * self.inch / 0.062)))
        self.top = int((self.title.count("\n") + 1) * line + 0.3 * line + 1.6 * self.gap_y)
        self.canvas = np.ones((self.top + rows * (h + self.gap_y) + self.gap_y // 3, width, 3))
        self.texts: list[tuple[float, float, str, dict]] = []

    def cell(self, row: int, x: float) -> tuple[int, int]:
        """Top-left canvas pixel of the cell at `row` and column position `x` (in cell widths)."""
        return self.top + row * (self.h + self.gap_y) + self.gap_y, int(x * (self.w + self.gap_x))

    def put(self, row: int, x: float, image: np.ndarray, caption: str = "", **style) -> None:
        y0, x0 = self.cell(row, x)
        self.canvas[y0: y0 + image.shape[0], x0: x0 + image.shape[1]] = image
        if caption:
            self.text(x0 + self.w / 2, y0 - 1, caption, ha="center", va="bottom", **style)

    def note(self, row: int, x: float, text: str) -> None:
        y0, x0 = self.cell(row, x)
        self.text(x0 + self.w / 2, y0 + self.h / 2, text, ha="center", va="center", fontsize=6,
                  bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none", "pad": 1})

    def colour_bar(self, row: int, x: float, scale: float) -> None:
        """A vertical gradient strip for [-scale, scale] (blue to red) with its range."""
        ramp = np.linspace(1.0, 0.0, self.h)[:, None] * np.ones((1, max(2, self.w // 6)))
        strip = CMAP(ramp)[..., :3]
        y0, x0 = self.cell(row, x)
        self.canvas[y0: y0 + self.h, x0: x0 + strip.shape[1]] = strip
        # one label (a text each is what a figure's time goes to): the ends are ±scale, white is 0
        self.text(x0 + strip.shape[1] + 1, y0 + self.h / 2, f"±{scale:.2g}", ha="left", va="center", fontsize=5,
                  rotation=90)

    def text(self, x: float, y: float, text: str, **style) -> None:
        self.texts.append((x, y, text, {"fontsize": 6, **style}))

    def save(self, path: Path, dpi: int) -> Path:
        height, width = self.canvas.shape[:2]
        fig = plt.figure(figsize=(width * self.inch, height * self.inch))
        ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
        ax.imshow(np.clip(self.canvas, 0, 1), interpolation="nearest", aspect="auto")
        for x, y, text, style in self.texts:
            ax.text(x, y, text, **style)
        ax.text(width / 2, 0.15 * self.gap_y, self.title, ha="center", va="top", fontsize=7)
        ax.set_axis_off()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=dpi)
        plt.close(fig)
        return path


def draw_probe_figure(path: Path, method: str, unit: str, task: int, target_mode: str, rows: list[ProbedImage],
                      overlay_unit: str | None = None, dpi: int = 80) -> Path:
    """`probe_mosaic` saved as a PNG at `path`."""
    return probe_mosaic(method, unit, task, target_mode, rows, overlay_unit).save(path, dpi)


def probe_mosaic(method: str, unit: str, task: int, target_mode: str, rows: list[ProbedImage],
                 overlay_unit: str | None = None) -> Mosaic:
    """Rows = images (task · label), columns = input | overlay after `task` | map after task
    0..`task` (cell captions: the prediction, red when wrong, and the explained class unless it is
    the true label) | colour bar of the row's scale. With `overlay_unit` (values that are not the
    map's, e.g. saliency's delta ⊙ pixel) the overlay gets its own scale and colour bar."""
    h, w = rows[0].pixels.shape[1:]
    history = 2.25 + (0.75 if overlay_unit else 0)  # column where the maps after each task start
    explained = {"label": "the true label", "predicted": "the predicted class"}.get(target_mode, f"class {target_mode}")
    overlay_text = f" | overlay: {overlay_unit}, own scale and bar" if overlay_unit else ""
    title = (f"{method} after task {task}: maps explain {explained} | colour: {unit}, one symmetric scale per "
             f"image over all tasks (bar at the right); grey: task not trained yet{overlay_text}")
    mosaic = Mosaic(len(rows), history + task + 1 + 0.8, h, w, title)
    headers = [(0, "input"), (1, "overlay (now)"), *((history + m, f"after task {m}") for m in range(task + 1))]
    for x, header in headers:
        mosaic.text(mosaic.cell(0, x)[1] + w / 2, mosaic.top - 0.45 * mosaic.gap_y, header, ha="center",
                    va="bottom", fontsize=7, fontweight="bold")
    for r, row in enumerate(rows):
        scale = symmetric_scale(list(row.maps.values()))
        mosaic.put(r, 0, _rgb(row.pixels), f"task {row.task} · label {row.label}")
        overlay_scale = symmetric_scale([row.overlay]) if overlay_unit else scale
        mosaic.put(r, 1, overlaid(row.pixels, row.overlay, overlay_scale))
        if float(row.overlay.abs().max()) == 0:
            mosaic.note(r, 1, "all zero")
        if overlay_unit:
            mosaic.colour_bar(r, 2.05, overlay_scale)
        for m in range(task + 1):
            if m not in row.maps:
                mosaic.put(r, history + m, np.broadcast_to(EMPTY, (h, w, 3)))  # not trained yet (or not probed)
                continue
            prediction, target = row.predictions[m], row.targets[m]
            caption = f"pred {prediction}" + ("" if target_mode == "label" else f" · expl. {target}")
            mosaic.put(r, history + m, coloured(row.maps[m], scale), caption,
                       color="black" if prediction == row.label else "red")
            if float(row.maps[m].abs().max()) == 0:
                mosaic.note(r, history + m, "all zero")
        mosaic.colour_bar(r, history + task + 1.05, scale)
    return mosaic
