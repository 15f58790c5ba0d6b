"""Set-level numbers on judge features: Fréchet distance, diversity, nearest neighbours, balance.

Fréchet distance between Gaussians N(mu1, A) and N(mu2, B):
    d² = |mu1 - mu2|² + tr(A) + tr(B) - 2 tr((A B)^½)
(A B)^½ is not symmetric, and scipy's general `sqrtm` of it is slow and can return
complex noise. Since tr((A B)^½) = tr((A^½ B A^½)^½) and A^½ B A^½ is symmetric positive
semi-definite, two symmetric eigen-decompositions (`eigh`) give the trace exactly:
A^½ from A's eigenvectors, then the square roots of the eigenvalues of A^½ B A^½.
Everything runs in float64, and tiny negative eigenvalues from rounding are clipped
to 0, so a set compared with itself gives ~0 rather than NaN.
"""

from __future__ import annotations

import math

import numpy as np
import torch

COLLAPSE_RATIO = 0.2  # a class whose generated diversity is below this share of the real one has collapsed
COPY_RMS = 0.02  # a generated glyph within this RMS pixel difference (0..1 scale) of a real one is a copy


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (F,) and covariance (F, F) in float64 (unbiased; zeros for a single sample)."""
    x = np.asarray(features, dtype=np.float64)
    mean = x.mean(axis=0)
    if len(x) < 2:
        return mean, np.zeros((x.shape[1], x.shape[1]))
    centred = x - mean
    return mean, centred.T @ centred / (len(x) - 1)


def _symmetric_sqrt(matrix: torch.Tensor) -> torch.Tensor:
    values, vectors = torch.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * values.clamp(min=0).sqrt()) @ vectors.T


def frechet_distance(mean1: np.ndarray, cov1: np.ndarray, mean2: np.ndarray, cov2: np.ndarray) -> float:
    """d² between N(mean1, cov1) and N(mean2, cov2), via eigh of symmetric forms in float64."""
    m1, m2 = torch.as_tensor(mean1, dtype=torch.float64), torch.as_tensor(mean2, dtype=torch.float64)
    a, b = torch.as_tensor(cov1, dtype=torch.float64), torch.as_tensor(cov2, dtype=torch.float64)
    root_a = _symmetric_sqrt(a)
    middle = root_a @ b @ root_a
    trace_root = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp(min=0).sqrt().sum()
    value = (m1 - m2).pow(2).sum() + a.trace() + b.trace() - 2 * trace_root
    return float(value.clamp(min=0))


def frechet_distance_of(features1: np.ndarray, features2: np.ndarray) -> float:
    """Fréchet distance between two feature sets (N1, F) and (N2, F)."""
    return frechet_distance(*feature_statistics(features1), *feature_statistics(features2))


def _subsample(x: np.ndarray, limit: int, seed: int = 0) -> np.ndarray:
    if len(x) <= limit:
        return x
    return x[np.random.default_rng(seed).choice(len(x), limit, replace=False)]


def mean_pairwise_distance(features: np.ndarray, limit: int = 2000) -> float:
    """Mean Euclidean distance over all pairs (NaN for fewer than 2 samples); at most `limit` samples used."""
    x = torch.as_tensor(_subsample(np.asarray(features, dtype=np.float64), limit))
    n = len(x)
    if n < 2:
        return math.nan
    return float(torch.cdist(x, x).sum() / (n * (n - 1)))


def nearest_distances(queries: np.ndarray, references: np.ndarray, exclude_self: bool = False, chunk: int = 1024) -> np.ndarray:
    """For each query row, the Euclidean distance to the nearest reference row.

    With `exclude_self` (queries and references the same set) a row's distance to itself
    is left out: the leave-one-out distance, the reference scale for real data.
    """
    q = torch.as_tensor(np.asarray(queries, dtype=np.float64))
    r = torch.as_tensor(np.asarray(references, dtype=np.float64))
    if len(r) == 0 or (exclude_self and len(r) < 2):
        return np.full(len(q), np.nan)
    found = []
    for start in range(0, len(q), chunk):
        distances = torch.cdist(q[start : start + chunk], r)
        if exclude_self:
            rows = torch.arange(len(distances))
            distances[rows, rows + start] = math.inf
        found.append(distances.min(dim=1).values)
    return torch.cat(found).numpy() if found else np.zeros(0)


def pixel_rms(images: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W) -> float64 (N, H*W) scaled so that Euclidean distance / sqrt(H*W) is the RMS difference."""
    images = np.asarray(images)
    return images.reshape(len(images), -1).astype(np.float64) / 255.0 / math.sqrt(images[0].size if len(images) else 1)


def class_balance(predictions: np.ndarray, num_classes: int) -> dict:
    """Histogram of predicted classes, its entropy (nats), entropy / log C, and KL to uniform (= log C - H)."""
    counts = np.bincount(np.asarray(predictions, dtype=np.int64), minlength=num_classes).astype(np.float64)
    share = counts / max(counts.sum(), 1)
    nonzero = share[share > 0]
    entropy = float(-(nonzero * np.log(nonzero)).sum())
    uniform = math.log(num_classes) if num_classes > 1 else 0.0
    return {"counts": counts.astype(int).tolist(), "entropy": entropy,
            "normalised_entropy": entropy / uniform if uniform else 1.0, "kl_to_uniform": uniform - entropy,
            "classes_predicted": int((counts > 0).sum())}
