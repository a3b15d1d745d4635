"""The published protocols, measured with dlib's pretrained face models (offline).

Not an entry point: ``plugins.metrics.register_metrics`` registers these factories. Each figure
is computed on the generated faces and, as its reference column, on the real faces of the same
split; each is labelled with the model behind it (registration meta ``model``), because numbers
from different face models are not comparable.

- ``landmarks68`` (``dlib-hog+68``): wav2pix's own measure (Duarte et al., ICASSP 2019: 90.25%
  with 1 s of speech): the share of faces in which dlib's frontal detector finds a face and its
  68-point predictor places every landmark inside the image.
- ``face_verification`` (``dlib-resnet128``): the share of generated faces whose descriptor lies
  within 0.6 (dlib's same-person threshold) of the real face paired with the same clip, and the
  mean cosine similarity to it (``_cosine``; SF2F's VGGFace score, in dlib's space). Real column:
  the real face against another image of the same person; chance: against an image of any clip.
- ``face_retrieval``: SF2F's protocol (Bai et al., 2022): each face ranks the identities' mean
  descriptors of the real *training* faces by cosine; recall@K for the Ks below the number of
  identities. Chance K / identities.
- ``face_matching``: voice2face's 1:2 protocol (Wen et al., 2019): is a face closer to a real face
  of its own identity than to one of a random other identity? Averaged over ``trials`` draws per
  face, with a bootstrap 95% interval over faces; chance 0.5.
- ``face_frechet``: the Fréchet distance between the descriptors of generated and real faces; its
  floor (the real column) is real training faces against the real test faces.

"Another image" excludes copies: the youtubers data pairs each face crop with five clips, so
partners are drawn among faces whose descriptor differs from the query's own real face.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from plugins.metrics import feature_stats, reference_note, training_indices, with_reference
from plugins.metrics.dlib_faces import (DESCRIPTOR_LABEL, DETECTOR_LABEL, FaceAnalysis, FaceSettings,
                                        analyse, as_dict, cached_analysis, model_files, settings_of)
from zoo import DataError, MetricContext, MetricSkipped, labels_of, load_real_faces

SAME_PERSON = 0.6  # dlib's threshold: its network was trained to put one person within 0.6
DISTINCT = 1e-6  # descriptors closer than this come from the same image


# -- the analyses every dlib metric shares --------------------------------------------------------------------
def analysis_of(context: MetricContext, which: str, settings: FaceSettings) -> Optional[FaceAnalysis]:
    """dlib's analysis of the ``generated``, ``real`` or ``train`` faces, computed once per
    evaluation; real and training faces are cached on disk (training faces, a gallery and a
    floor, without detection). None for ``train`` without a split.
    A missing package or model file is a ``MetricSkipped`` before any work starts."""
    model_files(settings)

    def compute():
        common = dict(device=context.device, progress=context.progress)
        if which == "generated":
            return analyse(context.generated_faces, settings, label="generated faces", **common)
        if which == "real":
            return cached_analysis(context.dataset, lambda: context.real_faces, settings,
                                   cache_dir=context.cache_dir, label="real faces", **common)
        train = context.train_dataset
        if train is None:
            return None
        return cached_analysis(train, lambda: load_real_faces(train), settings, detect=False,
                               cache_dir=context.cache_dir, label="real training faces", **common)

    return context.shared(("dlib_faces", which, settings), compute)


def _label(settings: FaceSettings, model: str = DESCRIPTOR_LABEL) -> str:
    """The model and how faces were prepared for it, for a metric's note."""
    return f"{model}; faces at {settings.size} px with a {settings.border:.0%} border, generated and real alike"


# -- arithmetic ------------------------------------------------------------------------------------------------
def distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Euclidean distance of two descriptor sets ``[N, D]``."""
    return np.linalg.norm(np.asarray(a, np.float64) - np.asarray(b, np.float64), axis=1)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two descriptor sets ``[N, D]``."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return (a * b).sum(axis=1) / np.maximum(norms, 1e-12)


def partners(descriptors: np.ndarray, labels: np.ndarray, rng: np.random.Generator, *,
             same_identity: Optional[bool], tries: int = 32) -> np.ndarray:
    """For each face, a random other face (index; -1 when none): of the same identity (True), of
    another identity (False) or of any (None); never a copy of the same image."""
    labels = np.asarray(labels)
    chosen = np.full(len(labels), -1, dtype=np.int64)
    for i, label in enumerate(labels):
        if same_identity is None:
            pool = np.arange(len(labels))
        else:
            pool = np.flatnonzero((labels == label) if same_identity else (labels != label))
        for j in rng.choice(pool, size=min(tries, len(pool)), replace=False) if len(pool) else ():
            if np.abs(descriptors[j] - descriptors[i]).max() > DISTINCT:
                chosen[i] = j
                break
    return chosen


def matching_success(queries: dict, real: np.ndarray, labels: np.ndarray, rng: np.random.Generator,
                     trials: int) -> dict:
    """voice2face's 1:2 matching: per query face, the share of ``trials`` in which it lies closer to
    a real face of its identity than to one of another (ties count half). ``queries`` maps a
    column to descriptors ``[N, D]`` row-aligned with ``real``; every column sees the same draws."""
    wins = {column: np.zeros(len(real)) for column in queries}
    counted = np.zeros(len(real))
    for _ in range(trials):
        own = partners(real, labels, rng, same_identity=True)
        other = partners(real, labels, rng, same_identity=False)
        valid = (own >= 0) & (other >= 0)
        counted += valid
        for column, faces in queries.items():
            near, far = distances(faces[valid], real[own[valid]]), distances(faces[valid], real[other[valid]])
            wins[column][valid] += (near < far) + 0.5 * (near == far)
    keep = counted > 0
    return {column: won[keep] / counted[keep] for column, won in wins.items()}


def bootstrap_interval(values: np.ndarray, rng: np.random.Generator, resamples: int = 1000) -> list[float]:
    """The percentile 95% interval of the mean of ``values``, resampling them with replacement."""
    values = np.asarray(values, dtype=np.float64)
    means = values[rng.integers(0, len(values), size=(resamples, len(values)))].mean(axis=1)
    return [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]


# -- the metrics ---------------------------------------------------------------------------------------------------
def landmarks68(size: int = 160, border: float = 0.25, models: Optional[str] = None):
    """wav2pix's measure: the share of faces where dlib finds a face and places its 68 landmarks."""
    settings = settings_of(dict(size=size, border=border, models=models))

    def metric(context: MetricContext) -> dict:
        generated = analysis_of(context, "generated", settings)
        real = analysis_of(context, "real", settings)
        context.details.update(settings=as_dict(settings), detected={"generated": float(generated.detected.mean()),
                                                                      "real": float(real.detected.mean())})
        context.note(f"landmarks68 ({_label(settings, DETECTOR_LABEL)}): dlib's HOG frontal detector, then the "
                     f"68-point predictor (trained on iBUG 300-W, whose licence excludes commercial use)")
        return {"landmarks68": float(generated.landmarks68.mean()), "landmarks68_real": float(real.landmarks68.mean())}

    return metric


def face_verification(threshold: float = SAME_PERSON, size: int = 160, border: float = 0.25,
                      models: Optional[str] = None):
    """Share of generated faces within ``threshold`` of their clip's real face, and mean cosine."""
    settings = settings_of(dict(size=size, border=border, models=models))

    def metric(context: MetricContext) -> dict:
        generated = analysis_of(context, "generated", settings).descriptors
        real = analysis_of(context, "real", settings).descriptors
        labels = context.labels.numpy()
        rng = np.random.default_rng(context.seed)
        pairs = {"": (np.arange(len(real)), generated),
                 "_real": _rows(real, partners(real, labels, rng, same_identity=True)),
                 "_chance": _rows(real, partners(real, labels, rng, same_identity=None))}
        values, mean_distance = {}, {}
        for suffix, pair in pairs.items():
            if pair is None:
                continue
            rows, faces = pair
            gap = distances(faces, real[rows])
            values[f"face_verification{suffix}"] = float((gap < threshold).mean())
            values[f"face_verification_cosine{suffix}"] = float(cosines(faces, real[rows]).mean())
            mean_distance[suffix.strip("_") or "generated"] = float(gap.mean())
        context.details.update(settings=as_dict(settings), mean_distance=mean_distance)
        context.note(f"face_verification ({_label(settings)}): distance to the clip's real face below {threshold}; "
                     f"real column: another image of the same person; chance: an image of a random clip")
        return values

    return metric


def _rows(real: np.ndarray, chosen: np.ndarray):
    """``(query rows, partner descriptors)`` for the faces that have a partner, else None."""
    rows = np.flatnonzero(chosen >= 0)
    return (rows, real[chosen[rows]]) if len(rows) else None


def face_retrieval(ks: Sequence[int] = (1, 2, 5, 10), size: int = 160, border: float = 0.25,
                   models: Optional[str] = None):
    """SF2F's retrieval: rank of the true identity among the training faces' identity means."""
    settings = settings_of(dict(size=size, border=border, models=models))

    def metric(context: MetricContext) -> dict:
        gallery, truth, names = _gallery(context, settings)
        ranks = feature_stats.retrieval_ranks(analysis_of(context, "generated", settings).descriptors, truth, gallery)
        real_ranks = feature_stats.retrieval_ranks(analysis_of(context, "real", settings).descriptors, truth, gallery)
        values, left_out = {}, [k for k in sorted({int(k) for k in ks}) if k >= len(names)]
        if left_out:
            context.note(f"face_retrieval@{', '.join(map(str, left_out))} left out: with {len(names)} identities "
                         f"recall at K >= {len(names)} is always 1")
        for k in sorted({int(k) for k in ks} - set(left_out)):
            values[f"face_retrieval_at_{k}"] = float((ranks < k).float().mean())
            values[f"face_retrieval_at_{k}_real"] = float((real_ranks < k).float().mean())
            values[f"face_retrieval_at_{k}_chance"] = k / len(names)
        if not values:
            raise MetricSkipped(f"{len(names)} identities leave no K below their number")
        context.details["settings"] = as_dict(settings)
        return values

    return metric


def _gallery(context: MetricContext, settings: FaceSettings):
    """``(identity means [I, 128], each clip's gallery index, gallery names)``: from the real
    training faces, or from the evaluated real faces (with a note) without a training split."""
    train = analysis_of(context, "train", settings)
    if train is None:
        source, labels, names = analysis_of(context, "real", settings), context.labels, list(context.dataset.identities)
        context.note("face_retrieval: no training split, so the gallery is built from the evaluated real faces")
    else:
        source, labels, names = train, labels_of(context.train_dataset), list(context.train_dataset.identities)
        context.note(f"face_retrieval ({_label(settings)}): gallery of {len(names)} identity means of "
                     f"{len(labels)} real training faces, ranked by cosine")
    index_of = {name: i for i, name in enumerate(names)}
    unknown = sorted(set(context.dataset.identities) - set(index_of))
    if unknown:
        raise DataError(f"identities {', '.join(unknown[:5])} of the evaluated split have no training faces")
    mapping = np.array([index_of[name] for name in context.dataset.identities])
    truth = mapping[context.labels.numpy()]
    return feature_stats.identity_means(source.descriptors, labels, len(names)), truth, names


def face_matching(trials: int = 10, resamples: int = 1000, size: int = 160, border: float = 0.25,
                  models: Optional[str] = None):
    """voice2face's 1:2 matching in dlib's space, with a bootstrap 95% interval; chance 0.5."""
    settings = settings_of(dict(size=size, border=border, models=models))
    if trials < 1 or resamples < 1:
        raise ValueError("trials and resamples must be at least 1")

    def metric(context: MetricContext) -> dict:
        def features(which: str) -> np.ndarray:
            return analysis_of(context, which, settings).descriptors

        context.details["settings"] = as_dict(settings)
        return one_to_two_matching(context, "face_matching", features, trials, resamples, _label(settings))

    return metric


def one_to_two_matching(context: MetricContext, name: str, features, trials: int, resamples: int,
                        label: str) -> dict:
    """voice2face's 1:2 matching of the generated and the real faces in the space ``features``
    (``"generated"`` or ``"real"`` -> ``[N, D]``), with bootstrap 95% intervals in the details."""
    labels = context.labels.numpy()
    if len(set(labels.tolist())) < 2:
        raise MetricSkipped("1:2 matching needs faces of at least two identities")
    real, generated = features("real"), features("generated")
    rng = np.random.default_rng(context.seed)
    success = matching_success({"generated": generated, "real": real}, real, labels, rng, trials)
    if not len(success["generated"]):
        raise MetricSkipped("no face has a distinct real face of its own identity to match against")
    interval = {column: bootstrap_interval(values, rng, resamples) for column, values in success.items()}
    context.details.update(interval95=interval, faces=len(success["generated"]))
    context.note(f"{name} ({label}): {trials} draws per face; bootstrap 95% interval "
                 f"generated [{interval['generated'][0]:.3f}, {interval['generated'][1]:.3f}], "
                 f"real [{interval['real'][0]:.3f}, {interval['real'][1]:.3f}]")
    return {name: float(success["generated"].mean()), f"{name}_real": float(success["real"].mean()),
            f"{name}_chance": 0.5}


def face_frechet(size: int = 160, border: float = 0.25, models: Optional[str] = None):
    """Fréchet distance between generated and real descriptors; floor: real training vs real test."""
    settings = settings_of(dict(size=size, border=border, models=models))

    def metric(context: MetricContext) -> dict:
        generated = analysis_of(context, "generated", settings).descriptors
        real = analysis_of(context, "real", settings).descriptors
        train = analysis_of(context, "train", settings)
        reference = None if train is None else train.descriptors[training_indices(context)]
        context.details["settings"] = as_dict(settings)
        context.note(f"face_frechet ({_label(settings)}): {reference_note(reference)}")
        return with_reference("face_frechet", feature_stats.frechet_distance, generated, real, reference)

    return metric
