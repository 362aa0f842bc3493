"""The JPEG-sensitivity experiment: how far do FID and friends move under JPEG artifacts that
people barely see?

:func:`jpeg_curve` takes one image set, re-encodes every image with
:func:`fastperc.jpeg.jpeg_simulate` at each quality (libjpeg-exact by default: the same pixels
Pillow's codec would give) and measures, between the originals and each copy set, the
distribution metrics (FID with a paired bootstrap interval, KID) and the full-reference ones
(PSNR, SSIM; per image, averaged). At quality 90 PSNR is typically above 35 dB and SSIM above
0.95 (differences nobody notices side by side), while FID has already moved: the curve makes
the mismatch visible.

Example:
    >>> from fastperc import data, sensitivity  # doctest: +SKIP
    >>> curve = sensitivity.jpeg_curve(data.demo_crops(), extractor="efficientnet_lite0")  # doctest: +SKIP
    >>> print(curve.to_markdown())  # doctest: +SKIP
    >>> curve.plot("curve.png")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

__all__ = ["METRICS", "SensitivityCurve", "SensitivityRow", "jpeg_curve"]

#: The metrics :func:`jpeg_curve` knows.
METRICS = ("fid", "kid", "psnr", "ssim")


@dataclass
class SensitivityRow:
    """One quality of the curve (``None`` for metrics not requested)."""

    quality: int
    fid: float | None = None
    fid_low: float | None = None  #: lower end of the paired bootstrap interval
    fid_high: float | None = None  #: upper end
    kid: float | None = None  #: KID mean (x 1000 in the tables)
    kid_std: float | None = None
    psnr: float | None = None  #: mean PSNR over the images, dB (RGB, 0..255)
    ssim: float | None = None  #: mean SSIM over the images (RGB)
    identical_pixels: float | None = None  #: share of pixels the JPEG copy left unchanged


@dataclass
class SensitivityCurve:
    """Result of :func:`jpeg_curve`."""

    rows: list[SensitivityRow]
    n_images: int
    subsampling: str
    jpeg_mode: str
    metrics: tuple[str, ...]
    provenance: dict[str, object] = field(default_factory=dict)
    confidence: float = 0.95

    def to_dict(self) -> dict[str, object]:
        """A JSON-able dict (what ``curve.json`` holds)."""
        return {
            "n_images": self.n_images,
            "subsampling": self.subsampling,
            "jpeg_mode": self.jpeg_mode,
            "metrics": list(self.metrics),
            "confidence": self.confidence,
            "provenance": self.provenance,
            "rows": [asdict(r) for r in self.rows],
        }

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            with open(path, "w") as f:
                f.write(text + "\n")
        return text

    def to_markdown(self) -> str:
        """The table as Markdown."""
        cols = ["quality"]
        if "fid" in self.metrics:
            cols += ["FID", f"FID {int(self.confidence * 100)}% CI"]
        if "kid" in self.metrics:
            cols += ["KID x1000"]
        if "psnr" in self.metrics:
            cols += ["PSNR dB"]
        if "ssim" in self.metrics:
            cols += ["SSIM"]
        lines = ["| " + " | ".join(cols) + " |", "|" + "---:|" * len(cols)]
        for r in self.rows:
            cells = [str(r.quality)]
            if "fid" in self.metrics:
                cells += [
                    _fmt(r.fid, 3),
                    "" if r.fid_low is None else f"{r.fid_low:.3f} .. {r.fid_high:.3f}",
                ]
            if "kid" in self.metrics:
                if r.kid is None:
                    cells += [""]
                elif r.kid_std is not None and r.kid_std > 1e-9:
                    cells += [f"{1000 * r.kid:.3f} ± {1000 * r.kid_std:.3f}"]
                else:  # one subset: the whole sets
                    cells += [f"{1000 * r.kid:.3f}"]
            if "psnr" in self.metrics:
                cells += [_fmt(r.psnr, 2)]
            if "ssim" in self.metrics:
                cells += [_fmt(r.ssim, 4)]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_markdown()

    def plot(self, path: str | os.PathLike | None = None):
        """Draw the curves: FID (with its interval) on the left axis, PSNR and SSIM on the right.

        Returns the matplotlib ``Figure``; saved to ``path`` when given (PNG, SVG, PDF by its
        extension). Uses the non-interactive Agg backend when saving.
        """
        import matplotlib

        if path is not None:
            matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        q = [r.quality for r in self.rows]
        fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
        handles = []
        if "fid" in self.metrics:
            fid = [r.fid for r in self.rows]
            handles += ax.plot(q, fid, "o-", color="tab:red", label="FID")
            if all(r.fid_low is not None for r in self.rows):
                ax.fill_between(
                    q,
                    [r.fid_low for r in self.rows],
                    [r.fid_high for r in self.rows],
                    color="tab:red",
                    alpha=0.15,
                )
            ax.set_ylabel("FID (lower is closer)", color="tab:red")
        if "kid" in self.metrics and "fid" not in self.metrics:
            handles += ax.plot(q, [1000 * r.kid for r in self.rows], "o-", label="KID x1000")
        ax.set_xlabel("JPEG quality")
        ax.invert_xaxis()
        ax.grid(alpha=0.3)
        right = ax.twinx() if ("psnr" in self.metrics or "ssim" in self.metrics) else None
        if right is not None and "psnr" in self.metrics:
            handles += right.plot(
                q, [min(r.psnr, 60.0) for r in self.rows], "s--", color="tab:blue", label="PSNR dB"
            )
            right.set_ylabel("PSNR dB (capped at 60); SSIM x 50", color="tab:blue")
        if right is not None and "ssim" in self.metrics:
            handles += right.plot(
                q, [50 * r.ssim for r in self.rows], "^--", color="tab:green", label="SSIM x 50"
            )
            if "psnr" not in self.metrics:
                right.set_ylabel("SSIM x 50", color="tab:green")
        prov = self.provenance.get("name") or self.provenance.get("extractor") or "features"
        ax.set_title(
            f"JPEG sensitivity: {self.n_images} images, {self.subsampling}, extractor {prov}",
            fontsize=10,
        )
        ax.legend(handles=handles, loc="upper left", fontsize=8)
        fig.tight_layout()
        if path is not None:
            fig.savefig(path)
            plt.close(fig)
        return fig


def _fmt(v: float | None, digits: int) -> str:
    if v is None:
        return ""
    if np.isinf(v):
        return "inf"
    return f"{v:.{digits}f}"


def _check_qualities(qualities: object) -> list[int]:
    if isinstance(qualities, (int, np.integer)):
        qualities = [qualities]
    if not isinstance(qualities, Sequence) or isinstance(qualities, str) or not qualities:
        raise TypeError(
            f"Expected `qualities` to be a non-empty sequence of ints, got {qualities!r}"
        )
    out = []
    for q in qualities:
        if isinstance(q, bool) or not isinstance(q, (int, np.integer)) or not 1 <= q <= 100:
            raise ValueError(
                f"Expected every entry of `qualities` to be an int in 1..100, got {q!r}"
            )
        out.append(int(q))
    return out


def _check_metrics(metrics: object) -> tuple[str, ...]:
    if isinstance(metrics, str):
        metrics = (metrics,)
    if not isinstance(metrics, Sequence) or not metrics:
        raise TypeError(
            f"Expected `metrics` to be a non-empty sequence from {METRICS}, got {metrics!r}"
        )
    bad = [m for m in metrics if m not in METRICS]
    if bad:
        raise ValueError(f"Expected `metrics` from {METRICS}, got unknown {bad}")
    return tuple(dict.fromkeys(metrics))


def _full_reference(
    originals: list[np.ndarray], copies: list[np.ndarray], metrics: tuple[str, ...]
) -> dict[str, float]:
    from . import metrics as fr

    out: dict[str, float] = {}
    psnrs: list[float] = []
    ssims: list[float] = []
    same = 0
    total = 0
    # same-size images go through the metrics as one batch
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, im in enumerate(originals):
        groups.setdefault(im.shape, []).append(i)
    for idx in groups.values():
        a = np.stack([originals[i] for i in idx])
        b = np.stack([copies[i] for i in idx])
        same += int((a == b).sum())
        total += a.size
        if "psnr" in metrics:
            p = np.asarray(fr.psnr(a, b, data_range=255, reduction="none"), dtype=np.float64)
            psnrs.extend(p.reshape(-1).tolist())
        if "ssim" in metrics:
            h, w = a.shape[1:3]
            if min(h, w) >= 11:
                s = np.asarray(fr.ssim(a, b, data_range=255, reduction="none"), dtype=np.float64)
                ssims.extend(s.reshape(-1).tolist())
    if "psnr" in metrics:
        finite = [p for p in psnrs if np.isfinite(p)]
        # identical copies have infinite PSNR: averaged as the mean over the finite ones, or inf
        out["psnr"] = float(np.mean(finite)) if finite else float("inf")
    if "ssim" in metrics and ssims:
        out["ssim"] = float(np.mean(ssims))
    out["identical_pixels"] = same / total if total else 1.0
    return out


def _paired_bootstrap(
    fa: np.ndarray, fb: np.ndarray, n: int, confidence: float, seed: int
) -> tuple[float, float]:
    from .stats import frechet_distance

    rng = np.random.default_rng(seed)
    reps = []
    for _ in range(n):
        idx = rng.integers(0, fa.shape[0], fa.shape[0])
        reps.append(frechet_distance(fa[idx], fb[idx]))
    lo, hi = np.quantile(reps, [(1 - confidence) / 2, (1 + confidence) / 2])
    # resampling with replacement duplicates images, which biases every replicate's FID
    # upwards: the percentile interval is shifted by the bootstrap estimate of that bias
    bias = float(np.mean(reps)) - frechet_distance(fa, fb)
    return float(max(lo - bias, 0.0)), float(hi - bias)


def jpeg_curve(
    images: object,
    qualities: Sequence[int] = (100, 95, 90, 75, 50, 25),
    metrics: Sequence[str] = METRICS,
    *,
    extractor: object = "auto",
    weights: str | os.PathLike | None = None,
    subsampling: str = "4:2:0",
    jpeg_mode: str = "exact",
    mode: str = "clean",
    batch_size: int = 32,
    device: object = None,
    workers: int | None = None,
    bootstrap: int = 50,
    confidence: float = 0.95,
    seed: int = 0,
    progress: bool | None = None,
) -> SensitivityCurve:
    """Each metric between an image set and its JPEG copies at each quality.

    Args:
        images: any source :func:`fastperc.inputs.open_images` reads (the decoded images are
            held in memory for the experiment).
        qualities: JPEG qualities (1..100), in the order of the table.
        metrics: from ``("fid", "kid", "psnr", "ssim")``.
        extractor, weights, mode, batch_size, device, workers: the feature pipeline's
            (:func:`fastperc.pipeline.extract_features`).
        subsampling: ``"4:4:4"``, ``"4:2:2"`` or ``"4:2:0"`` (Pillow's default).
        jpeg_mode: :func:`fastperc.jpeg.jpeg_simulate`'s ``mode`` (``"exact"``: Pillow's pixels).
        bootstrap: replicates of the paired bootstrap interval of FID (0: none); each resamples
            the images, keeping every original with its own copy; the percentile interval is
            shifted by the bootstrap estimate of the bias (resampled sets hold duplicates,
            which inflate FID).
        confidence: coverage of that interval.
        seed: seed of the resampling.
        progress: progress bars on stderr (default: when stderr is a terminal).

    Returns:
        :class:`SensitivityCurve` (``.to_markdown()``, ``.to_json()``, ``.plot()``).
    """
    from .inputs import open_images
    from .jpeg import jpeg_simulate
    from .models import get_extractor
    from .pipeline import _resolve_device, extract_features
    from .stats import frechet_distance, kid

    qs = _check_qualities(qualities)
    mets = _check_metrics(metrics)
    if subsampling not in ("4:4:4", "4:2:2", "4:2:0"):
        raise ValueError(
            f"Expected `subsampling` to be one of ('4:4:4', '4:2:2', '4:2:0'), got {subsampling!r}"
        )
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, (int, np.integer)) or bootstrap < 0:
        raise ValueError(f"Expected `bootstrap` to be an int >= 0, got {bootstrap!r}")
    source = open_images(images, workers=workers)
    originals = [np.ascontiguousarray(r.image) for r in source]
    if not originals:
        raise ValueError("No images in `images`")
    need_features = "fid" in mets or "kid" in mets
    if need_features and len(originals) < 2:
        raise ValueError("FID and KID need at least 2 images in `images`")
    provenance: dict[str, object] = {}
    feats_a = None
    ext = None
    if need_features:
        ext = get_extractor(extractor, weights=weights, device=_resolve_device(device))
        kw = dict(extractor=ext, mode=mode, batch_size=batch_size, device=device, progress=progress)
        res = extract_features(originals, desc="originals", **kw)
        feats_a = res.features
        provenance = res.provenance
    rows = []
    for q in qs:
        copies = [
            np.asarray(jpeg_simulate(im, quality=q, subsampling=subsampling, mode=jpeg_mode))
            for im in originals
        ]
        row = SensitivityRow(quality=q)
        fr = _full_reference(originals, copies, mets)
        row.psnr, row.ssim = fr.get("psnr"), fr.get("ssim")
        row.identical_pixels = fr["identical_pixels"]
        if need_features:
            fb = extract_features(copies, desc=f"q={q}", **kw).features
            if "fid" in mets:
                row.fid = float(frechet_distance(feats_a, fb))
                if bootstrap:
                    row.fid_low, row.fid_high = _paired_bootstrap(
                        feats_a, fb, bootstrap, confidence, seed
                    )
            if "kid" in mets:
                m = min(1000, len(originals))
                k = kid(feats_a, fb, subsets=100, subset_size=m, seed=seed)
                row.kid, row.kid_std = float(k.mean), float(k.std)
        rows.append(row)
    return SensitivityCurve(
        rows, len(originals), subsampling, jpeg_mode, mets, provenance, confidence
    )
