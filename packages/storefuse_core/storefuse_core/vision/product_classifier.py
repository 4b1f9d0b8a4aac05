"""Which product is in the shopper's hand, from a camera crop: the look-alike tie-breaker's eyes.

A linear-discriminant model on cheap colour features (`view_features`): every product is a mean
feature vector, all products share one within-product covariance (how lighting, pose, resolution,
fingers and blur move a view's features), so a new product costs only the mean of a few renders of
its package. The shared covariance and the calibration are estimated once from a fixed synthetic
catalogue (brands with three flavours each, so calibration sees look-alikes); the product means are
trained lazily, per sku, the first time a candidate set names them, from renders seeded by
(seed, sku) alone so results never depend on call order.

Calibration: the logits are divided by a temperature that depends on the view (sharpness, skin in
the middle) and on how many candidates there are, and a small uniform floor is mixed in; all fitted
on held-out renders by likelihood, over the whole catalogue and over each brand's flavours alone.
Fusion multiplies these probabilities into weight candidates, so a confident wrong answer would be
the worst failure: the floor keeps every candidate alive.
"""
from __future__ import annotations

import math

import cv2
import numpy as np
from scipy.optimize import minimize
from scipy.special import expit

from storefuse_core.layout import Product
from storefuse_core.vision import stable_hash
from storefuse_core.vision.package import VIEW_SIZE, look_of, render_view

HUE_BINS = 18
GRID = 4
_SHRINK = 0.05           # covariance shrinkage toward its mean variance
_CAL_BRANDS = 16         # the synthetic calibration catalogue: brands x flavours
_CAL_FLAVOURS = 3
_CAL_HELD_OUT = 10       # held-out views per calibration product


def nuisance(rng: np.random.Generator) -> dict:
    """Random viewing conditions for training renders: what a store camera meets, and a bit worse."""
    return {"pixels": float(np.exp(rng.uniform(math.log(8.0), math.log(40.0)))),
            "gain": float(rng.uniform(0.5, 1.4)),
            "tint": tuple(float(t) for t in rng.uniform(0.85, 1.15, 3)),
            "occlusion": float(rng.uniform(0.0, 0.6)),
            "blur_px": float(rng.uniform(0.0, 4.0)) if rng.random() < 0.6 else 0.0,
            "noise_sd": float(rng.uniform(1.0, 5.0))}


def _window(n: int) -> np.ndarray:
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float64)
    c = (n - 1) / 2
    w = np.exp(-((xx - c) ** 2 + (yy - c) ** 2) / (2 * (0.22 * n) ** 2))
    return (w / w.sum()).ravel()


_WIN = {VIEW_SIZE: _window(VIEW_SIZE)}


def view_features(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(features, quality) of a view. Features: a centre-weighted hue x saturation histogram with
    grey-level bins for achromatic pixels (square-rooted), and a coarse Lab layout of the centre.
    Quality: [sharpness (log mean |Laplacian| over brightness), skin fraction in the centre]."""
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"a product view is an H x W x 3 uint8 BGR image, got {img.shape} {img.dtype}")
    n = img.shape[0]
    if img.shape[1] != n:
        img = cv2.resize(img, (n, n), interpolation=cv2.INTER_AREA)
    win = _WIN.get(n)
    if win is None:
        win = _WIN.setdefault(n, _window(n))
    hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV).reshape(-1, 3)
    h = hsv[:, 0].astype(np.float64)
    s = hsv[:, 1].astype(np.float64)
    v = hsv[:, 2].astype(np.float64)
    chroma = (s >= 45) & (v >= 40)
    hc = h / 180.0 * HUE_BINS - 0.5
    h0 = np.floor(hc)
    frac = hc - h0
    sb = (s >= 150).astype(np.int64)
    i0 = (np.mod(h0, HUE_BINS).astype(np.int64) * 2 + sb)
    i1 = (np.mod(h0 + 1, HUE_BINS).astype(np.int64) * 2 + sb)
    wc = np.where(chroma, win, 0.0)
    hist = (np.bincount(i0, wc * (1 - frac), 2 * HUE_BINS + 6) + np.bincount(i1, wc * frac, 2 * HUE_BINS + 6))
    vb = 2 * HUE_BINS + np.minimum((v * (6 / 256.0)).astype(np.int64), 5)
    hist += np.bincount(vb, np.where(chroma, 0.0, win), 2 * HUE_BINS + 6)
    hist = np.sqrt(hist / max(hist.sum(), 1e-12))
    lo, hi = n // 5, n - n // 5
    centre = img[lo:hi, lo:hi]
    lab = cv2.cvtColor(cv2.resize(centre, (GRID, GRID), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2Lab)
    grid = lab.reshape(-1).astype(np.float64) / 255.0
    grey = cv2.cvtColor(centre, cv2.COLOR_BGR2GRAY)
    lap = float(np.mean(np.abs(cv2.Laplacian(grey, cv2.CV_32F)))) / (float(grey.mean()) + 10.0)
    ch = hsv.reshape(n, n, 3)[lo:hi, lo:hi]
    skin = float(np.mean((ch[..., 0] <= 22) & (ch[..., 1] >= 50) & (ch[..., 1] <= 190) & (ch[..., 2] >= 60)))
    return np.concatenate([hist, 0.7 * grid]), np.array([math.log(lap + 1e-3), skin])


def _temperature_design(q: np.ndarray, k) -> np.ndarray:
    """Log-temperature regressors: view quality (sharpness, skin) and the candidate count (a small
    set of look-alikes is where a confident mistake costs most)."""
    q = np.atleast_2d(q)
    return np.column_stack([np.ones(len(q)), q[:, 0] + 2.0, q[:, 1], np.log(np.broadcast_to(k, len(q))) - 2.0])


def _calibration_catalogue() -> list[Product]:
    return [Product(sku=f"CAL-{b:02d}-{f}", name=f"Calib{b:02d} flavour {f}", grams=100.0, grams_sd=1.0,
                    price=1.0, plates=())
            for b in range(_CAL_BRANDS) for f in range(_CAL_FLAVOURS)]


class _Shared:
    """The within-product whitening and the calibration, from the synthetic catalogue."""

    def __init__(self, seed: int, views: int):
        cat = _calibration_catalogue()
        feats, labels = [], []
        held, held_q, held_y = [], [], []
        for k, p in enumerate(cat):
            look = look_of(p)
            rng = np.random.default_rng([seed, stable_hash("product-view-calibration", p.sku)])
            for i in range(views + _CAL_HELD_OUT):
                f, q = view_features(render_view(look, rng, **nuisance(rng)))
                if i < views:
                    feats.append(f)
                    labels.append(k)
                else:
                    held.append(f)
                    held_q.append(q)
                    held_y.append(k)
        x = np.array(feats)
        y = np.array(labels)
        means = np.array([x[y == k].mean(axis=0) for k in range(len(cat))])
        r = x - means[y]
        cov = r.T @ r / max(1, len(x) - len(cat))
        cov = (1 - _SHRINK) * cov + _SHRINK * np.eye(len(cov)) * np.trace(cov) / len(cov)
        evals, evecs = np.linalg.eigh(cov)
        self.whiten = (evecs / np.sqrt(np.maximum(evals, 1e-12))).T     # W with W cov W^T = I
        wm = means @ self.whiten.T
        hx = np.array(held) @ self.whiten.T
        d2 = ((hx[:, None, :] - wm[None, :, :]) ** 2).sum(axis=2)      # held-out x catalogue
        hq = np.array(held_q)
        hy = np.array(held_y)
        # two candidate sets per held-out view: the whole catalogue, and its own brand's flavours
        fam = np.arange(len(cat)) // _CAL_FLAVOURS
        own = fam[None, :] == fam[hy][:, None]
        self.theta, self.floor = self._fit(d2, hq, hy, own)

    @staticmethod
    def _fit(d2, hq, hy, own) -> tuple[np.ndarray, float]:
        rows = np.arange(len(hy))

        designs = [(None, d2.shape[1], _temperature_design(hq, d2.shape[1]), 1.0)]
        designs.append((own, own.sum(axis=1), _temperature_design(hq, own.sum(axis=1)), 2.0))

        def nll(params):
            theta, fl = params[:4], float(expit(params[4]))
            total = 0.0
            for mask, k, design, weight in designs:
                logit = -0.5 * d2 / np.exp(design @ theta)[:, None]
                lg = logit if mask is None else np.where(mask, logit, -np.inf)
                lg = lg - lg.max(axis=1, keepdims=True)
                p = np.exp(lg)
                p = p[rows, hy] / p.sum(axis=1)
                total -= weight * float(np.sum(np.log((1 - fl) * p + fl / k)))
            return total

        x0 = np.array([math.log(max(1.0, float(np.median(d2)) / 20)), 0.0, 0.0, 0.0, -4.0])
        res = minimize(nll, x0, method="Nelder-Mead", options={"maxiter": 2000, "xatol": 1e-4, "fatol": 1e-3})
        fl = max(0.01, float(expit(res.x[4])))
        return res.x[:4], fl


_SHARED: dict[tuple[int, int], _Shared] = {}


class ProductClassifier:
    """Probabilities over a candidate set of skus for a crop of a product in a hand."""

    def __init__(self, store, seed: int = 0, views_per_product: int = 32):
        self.store = store
        self.seed = int(seed)
        self.views_per_product = int(views_per_product)
        self._means: dict[str, np.ndarray] = {}

    @property
    def _shared(self) -> _Shared:
        key = (self.seed, self.views_per_product)
        if key not in _SHARED:
            _SHARED[key] = _Shared(*key)
        return _SHARED[key]

    def train(self, skus) -> None:
        """Learn the named products now (classify does it lazily); unknown skus raise KeyError."""
        w = self._shared.whiten
        for sku in skus:
            if sku in self._means:
                continue
            look = look_of(self.store.products[sku])
            rng = np.random.default_rng([self.seed, stable_hash("product-view", sku)])
            f = np.array([view_features(render_view(look, rng, **nuisance(rng)))[0]
                          for _ in range(self.views_per_product)])
            self._means[sku] = f.mean(axis=0) @ w.T

    def classify(self, image: np.ndarray, skus: list[str]) -> dict[str, float]:
        """P(sku | image) over exactly `skus` (summing to 1)."""
        skus = list(dict.fromkeys(skus))
        if not skus:
            return {}
        self.train(skus)
        sh = self._shared
        f, q = view_features(image)
        x = f @ sh.whiten.T
        d2 = np.array([float(np.sum((x - self._means[s]) ** 2)) for s in skus])
        t = float(np.exp(_temperature_design(q, len(skus)) @ sh.theta)[0])
        lg = -0.5 * d2 / t
        p = np.exp(lg - lg.max())
        p = (1 - sh.floor) * p / p.sum() + sh.floor / len(skus)
        p /= p.sum()
        return {s: float(v) for s, v in zip(skus, p)}


__all__ = ["ProductClassifier", "nuisance", "view_features"]
