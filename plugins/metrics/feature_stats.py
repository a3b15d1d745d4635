"""Distances between two sets of feature vectors, and identity retrieval: the metrics' arithmetic.

Not an entry point: ``plugins.metrics`` calls these on classifier or Inception features.

- ``frechet_distance``: the Fréchet distance between Gaussians fitted to each set (Heusel et al.,
  NeurIPS 2017, where it was introduced as FID on Inception features). The trace of the matrix
  square root is taken without ``scipy.linalg.sqrtm``: the eigenvalues of ``C1 C2`` are those of
  ``M M^T`` with ``M = X1^T X2`` (centred data over ``sqrt((n1-1)(n2-1))``), so
  ``tr sqrt(C1 C2)`` is the nuclear norm of the small ``n1 x n2`` matrix ``X1 X2^T`` (or of the
  ``d x d`` form when there are more samples than dimensions). Exact, real, and fast when there
  are fewer faces than feature dimensions, as there are here.
- ``kernel_inception_distance``: the unbiased squared MMD with the cubic polynomial kernel
  ``(x.y / d + 1)^3``, averaged over random subsets (Binkowski et al., ICLR 2018).
- ``retrieval_ranks``: the rank of the true identity when a face's embedding is compared by
  cosine similarity with every identity's mean real embedding (SF2F, Bai et al., 2022).
"""

from __future__ import annotations

import numpy as np
import torch


def _as_float64(features) -> np.ndarray:
    array = features.detach().cpu().numpy() if isinstance(features, torch.Tensor) else np.asarray(features)
    array = np.asarray(array, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"features must be [N, D], got shape {array.shape}")
    return array


def _trace_sqrt_product(a_centred: np.ndarray, b_centred: np.ndarray) -> float:
    """``tr sqrt(Ca Cb)`` for the sample covariances of two centred sets."""
    scale = np.sqrt(max(len(a_centred) - 1, 1) * max(len(b_centred) - 1, 1))
    dims = a_centred.shape[1]
    if min(len(a_centred), len(b_centred)) <= dims:
        # Eigenvalues of Ca Cb are the squared singular values of Xa Xb^T / scale.
        singular = np.linalg.svd(a_centred @ b_centred.T / scale, compute_uv=False)
        return float(singular.sum())
    cov_a = a_centred.T @ a_centred / (len(a_centred) - 1)
    cov_b = b_centred.T @ b_centred / (len(b_centred) - 1)
    values, vectors = np.linalg.eigh(cov_a)
    root_a = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    inner = np.linalg.eigvalsh(root_a @ cov_b @ root_a)  # symmetric PSD, same spectrum as Ca Cb
    return float(np.sqrt(np.clip(inner, 0, None)).sum())


def frechet_distance(first, second) -> float:
    """``|mu1 - mu2|^2 + tr(C1) + tr(C2) - 2 tr sqrt(C1 C2)`` of two feature sets ``[N, D]``."""
    a, b = _as_float64(first), _as_float64(second)
    if len(a) < 2 or len(b) < 2:
        raise ValueError("the Fréchet distance needs at least two samples in each set")
    mean_a, mean_b = a.mean(axis=0), b.mean(axis=0)
    a_centred, b_centred = a - mean_a, b - mean_b
    trace_a = float((a_centred ** 2).sum() / (len(a) - 1))
    trace_b = float((b_centred ** 2).sum() / (len(b) - 1))
    distance = float(((mean_a - mean_b) ** 2).sum()) + trace_a + trace_b
    distance -= 2.0 * _trace_sqrt_product(a_centred, b_centred)
    return max(distance, 0.0)  # rounding can leave a tiny negative for identical sets


def _polynomial_mmd(a: np.ndarray, b: np.ndarray) -> float:
    """Unbiased squared MMD of two equal-size sets with the cubic polynomial kernel."""
    dims = a.shape[1]
    k_aa = (a @ a.T / dims + 1.0) ** 3
    k_bb = (b @ b.T / dims + 1.0) ** 3
    k_ab = (a @ b.T / dims + 1.0) ** 3
    m = len(a)
    within = (k_aa.sum() - np.trace(k_aa) + k_bb.sum() - np.trace(k_bb)) / (m * (m - 1))
    return float(within - 2.0 * k_ab.mean())


def kernel_inception_distance(first, second, *, subsets: int = 50, subset_size: int = 1000,
                              seed: int = 0) -> float:
    """Mean unbiased polynomial-kernel MMD^2 over ``subsets`` random subsets of both sets."""
    a, b = _as_float64(first), _as_float64(second)
    size = min(subset_size, len(a), len(b))
    if size < 2:
        raise ValueError("KID needs at least two samples in each set")
    rng = np.random.default_rng(seed)
    if size == len(a) == len(b):
        subsets = 1  # every subset would be the whole of both sets
    values = [_polynomial_mmd(a[rng.choice(len(a), size, replace=False)],
                              b[rng.choice(len(b), size, replace=False)]) for _ in range(subsets)]
    return float(np.mean(values))


def identity_means(features, labels, num_identities: int) -> torch.Tensor:
    """The mean L2-normalised embedding of each identity ``[num_identities, D]`` (NaN if absent)."""
    features = torch.nn.functional.normalize(torch.as_tensor(features, dtype=torch.float64), dim=1)
    labels = torch.as_tensor(labels, dtype=torch.long)
    means = torch.full((num_identities, features.shape[1]), float("nan"), dtype=torch.float64)
    for identity in range(num_identities):
        members = features[labels == identity]
        if len(members):
            means[identity] = members.mean(dim=0)
    return means


def retrieval_ranks(features, labels, means: torch.Tensor) -> torch.Tensor:
    """0-based rank of each face's true identity among all identities, by cosine similarity."""
    queries = torch.nn.functional.normalize(torch.as_tensor(features, dtype=torch.float64), dim=1)
    gallery = torch.as_tensor(means, dtype=torch.float64).nan_to_num(nan=0.0)
    gallery = torch.nn.functional.normalize(gallery, dim=1)
    similarity = queries @ gallery.T
    labels = torch.as_tensor(labels, dtype=torch.long)
    true = similarity.gather(1, labels[:, None])
    # Ties count against the face: an all-equal similarity row ranks the truth last, not first.
    return (similarity >= true).sum(dim=1) - 1


def confusion_matrix(true, predicted, num_identities: int) -> list[list[int]]:
    """Counts ``[true identity][predicted identity]`` as nested lists (JSON-ready)."""
    matrix = np.zeros((num_identities, num_identities), dtype=np.int64)
    np.add.at(matrix, (np.asarray(true, dtype=np.int64), np.asarray(predicted, dtype=np.int64)), 1)
    return matrix.tolist()
