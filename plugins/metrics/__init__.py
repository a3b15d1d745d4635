"""The built-in metrics: wav2pix's measures and the field's since, all offline.

Each factory takes the user's options and returns ``metric(context) -> {name: float}``; the
``zoo.MetricContext`` it is handed holds the faces, the datasets and the shared face classifier. Next to every figure for
the generated faces, the same measure on real faces (``<name>_real``) is the reference column.

- ``landmarks68``, ``face_verification``, ``face_retrieval``, ``face_matching``, ``face_frechet``:
  wav2pix's own measure and the field's protocols with dlib's pretrained face models
  (``face_protocols``, ``dlib_faces``, ``dlib_resnet``).
- ``face_detection``: share of faces in which OpenCV's Haar cascade finds one.
- ``identity_accuracy``: wav2pix's protocol: a classifier trained on the real training faces
  names the speaker of each generated face; with per-identity confusion and the chance level.
- ``frechet_distance``, ``kid``: distances in that classifier's feature space. They are NOT
  comparable with Inception FID/KID numbers from papers: another network, trained here.
- ``fid``: Fréchet distance on Inception-v3 features from a weights file the user gives.
- ``recall_at_k``: identity retrieval as in SF2F (Bai et al., 2022).

The reference for the distances is a sample of real *training* faces, as many as the test
clips, against the real test faces: what real faces of these people that are not the test
faces score. The classifier has seen those training faces, so the reference is a floor in
spirit, not an exact one.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch

from plugins.metrics import feature_stats
from zoo import MetricContext, MetricSkipped, hookimpl, load_real_faces

REAL = "_real"  # the reference column's suffix (see zoo.MetricContext)
FEATURE_SPACE_NOTE = ("measured in the features of the face classifier trained here: not comparable "
                      "with Inception FID/KID numbers")


# -- shared pieces: classifier outputs, identity mapping, real reference ---------------------------------
def classifier_outputs(context: MetricContext, which: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(features, logits)`` of the generated or real faces, computed once per evaluation."""
    def compute():
        faces = context.generated_faces if which == "generated" else context.real_faces
        return context.classifier.outputs(faces)

    return context.shared(("classifier_outputs", which), compute)


def class_labels(context: MetricContext) -> torch.Tensor:
    """The evaluated labels as indices into the classifier's identities (matched by name)."""
    classifier, dataset = context.classifier, context.dataset
    index_of = {name: i for i, name in enumerate(classifier.identities)}
    unknown = sorted(set(dataset.identities) - set(index_of))
    if unknown:
        # Held-out speakers (e.g. ``--arg dataset.unseen=10``): naming them is impossible by design.
        raise MetricSkipped(f"identities {', '.join(unknown[:5])} of the evaluated split were never in the "
                            f"training split the face classifier learnt from (see 'matching' for unseen voices)")
    mapping = torch.as_tensor([index_of[name] for name in dataset.identities], dtype=torch.long)
    return mapping[context.labels]


def reference_indices(train_size: int, count: int, seed: int) -> np.ndarray:
    """``count`` of ``range(train_size)`` drawn without replacement with ``seed``, in order
    (all of them when there are no more than ``count``): the real-vs-real reference sample."""
    indices = np.arange(train_size)
    if count < train_size:
        indices = np.sort(np.random.default_rng(seed).choice(indices, count, replace=False))
    return indices


def training_indices(context: MetricContext) -> Optional[np.ndarray]:
    """Which training items make the reference sample: as many as the evaluated clips, seeded,
    the same for every metric; None without a training split."""
    def compute():
        train = context.train_dataset
        if train is None:
            return None
        return reference_indices(len(train), len(context.dataset), context.seed)

    return context.shared("training_indices", compute)


def training_sample(context: MetricContext) -> Optional[torch.Tensor]:
    """The real training faces of ``training_indices`` (loaded once, shared); None without a
    training split."""
    def compute():
        indices = training_indices(context)
        return None if indices is None else load_real_faces(_Subset(context.train_dataset, indices))

    return context.shared("training_sample", compute)


def reference_features(context: MetricContext) -> Optional[torch.Tensor]:
    """Classifier features of ``training_sample``; None without a training split."""
    def compute():
        sample = training_sample(context)
        return None if sample is None else context.classifier.features(sample)

    return context.shared("reference_features", compute)


class _Subset:
    """Some items of a dataset, with its ``load_image`` when it has one."""

    def __init__(self, dataset, indices):
        self.dataset, self.indices = dataset, [int(i) for i in indices]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict:
        return self.dataset[self.indices[i]]

    def load_image(self, i: int) -> torch.Tensor:
        loader = getattr(self.dataset, "load_image", None)
        return loader(self.indices[i]) if loader is not None else self.dataset[self.indices[i]]["image"]


def with_reference(name: str, distance, generated, real, reference) -> dict:
    """``{name: distance(generated, real)}`` and, given a reference sample of other real faces,
    ``<name>_real``: how far real faces that are not the test faces lie from them (the floor)."""
    values = {name: distance(generated, real)}
    if reference is not None:
        values[f"{name}{REAL}"] = distance(reference, real)
    return values


def reference_note(reference) -> str:
    """The note saying what a distance's real column compares."""
    if reference is None:
        return "no training split, so no real column"
    return f"real column: {len(reference)} real training faces vs the real test faces"


# -- face detection ----------------------------------------------------------------------------------------
def face_detection(min_neighbours: int = 5):
    """Share of faces in which OpenCV's Haar cascade finds a face (dlib's is ``landmarks68``)."""
    def metric(context: MetricContext) -> dict:
        from plugins.metrics.detection import haar_found

        return {"face_detection": float(haar_found(context.generated_faces, min_neighbours=min_neighbours).mean()),
                "face_detection_real": float(haar_found(context.real_faces, min_neighbours=min_neighbours).mean())}

    return metric


# -- identity accuracy -------------------------------------------------------------------------------------
def identity_accuracy():
    """wav2pix's protocol: the classifier names the speaker of each generated face."""
    def metric(context: MetricContext) -> dict:
        model = context.classifier
        truth = class_labels(context)
        guessed = classifier_outputs(context, "generated")[1].argmax(dim=1)
        real_guessed = classifier_outputs(context, "real")[1].argmax(dim=1)
        count = len(model.identities)
        context.details["confusion"] = {"identities": model.identities,
                                        "generated": feature_stats.confusion_matrix(truth, guessed, count),
                                        "real": feature_stats.confusion_matrix(truth, real_guessed, count)}
        context.details["per_identity"] = {"generated": _per_identity(truth, guessed, model.identities),
                                           "real": _per_identity(truth, real_guessed, model.identities)}
        context.details["classifier"] = dict(model.info)
        context.note(f"face classifier: {model.info.get('arch')} trained from scratch on "
                     f"{model.info.get('train_items')} real {model.info.get('split') or 'training'} faces; "
                     f"its accuracy on the real faces evaluated here is the real column")
        return {"identity_accuracy": float((guessed == truth).float().mean()),
                "identity_accuracy_real": float((real_guessed == truth).float().mean()),
                "identity_accuracy_chance": 1.0 / count}

    return metric


def _per_identity(truth: torch.Tensor, guessed: torch.Tensor, identities: Sequence[str]) -> dict:
    return {name: float((guessed[truth == i] == i).float().mean())
            for i, name in enumerate(identities) if bool((truth == i).any())}


# -- distances in the classifier's feature space -------------------------------------------------------------
def frechet_distance():
    """Fréchet distance between generated and real test faces in the classifier's features."""
    def metric(context: MetricContext) -> dict:
        generated = classifier_outputs(context, "generated")[0]
        real = classifier_outputs(context, "real")[0]
        reference = reference_features(context)
        context.note(f"frechet_distance: {FEATURE_SPACE_NOTE}; {reference_note(reference)}")
        return with_reference("frechet_distance", feature_stats.frechet_distance, generated, real, reference)

    return metric


def kid(subsets: int = 50, subset_size: int = 1000):
    """Kernel distance (unbiased polynomial MMD^2) in the classifier's features."""
    def metric(context: MetricContext) -> dict:
        generated = classifier_outputs(context, "generated")[0]
        real = classifier_outputs(context, "real")[0]
        reference = reference_features(context)
        context.note(f"kid: {FEATURE_SPACE_NOTE}; unbiased, so it can dip below 0 for close sets")
        def distance(a, b):
            return feature_stats.kernel_inception_distance(a, b, subsets=subsets, subset_size=subset_size,
                                                           seed=context.seed)

        return with_reference("kid", distance, generated, real, reference)

    return metric


# -- Inception FID ---------------------------------------------------------------------------------------------
def fid(weights: Optional[str] = None, input_size: int = 299, inception_batch_size: int = 32):
    """FID on Inception-v3 pool features from ``weights`` (a path); skipped without one."""
    def metric(context: MetricContext) -> dict:
        from pathlib import Path

        from plugins.metrics.inception import inception_features, load_inception

        if not weights:
            raise MetricSkipped("no Inception-v3 weights given and nothing is downloaded; pass "
                                "--fid-weights PATH to a .pth or .safetensors state dict")
        if not Path(weights).expanduser().is_file():
            raise MetricSkipped(f"--fid-weights {weights}: no such file")
        network = load_inception(weights)

        def features(faces):
            return inception_features(network, faces, context.device, inception_batch_size, input_size)

        generated, real = features(context.generated_faces), features(context.real_faces)
        sample = training_sample(context)
        reference = None if sample is None else features(sample)
        context.note(f"fid: Inception-v3 weights from {weights} at {input_size} px; {reference_note(reference)}")
        return with_reference("fid", feature_stats.frechet_distance, generated, real, reference)

    return metric


# -- identity retrieval ------------------------------------------------------------------------------------------
def recall_at_k(ks: Sequence[int] = (1, 2, 5)):
    """SF2F's retrieval: rank of the true identity among identity means of real embeddings (the
    evaluated identities' own faces, so it works for speakers never heard in training too)."""
    def metric(context: MetricContext) -> dict:
        truth = context.labels
        present = sorted(set(truth.tolist()))
        local = torch.as_tensor([present.index(t) for t in truth.tolist()], dtype=torch.long)
        real = classifier_outputs(context, "real")[0]
        generated = classifier_outputs(context, "generated")[0]
        means = feature_stats.identity_means(real, local, len(present))
        ranks = feature_stats.retrieval_ranks(generated, local, means)
        real_ranks = feature_stats.retrieval_ranks(real, local, means)
        values = {}
        for k in sorted({int(k) for k in ks}):
            if k >= len(present):
                context.note(f"recall@{k} left out: with {len(present)} identities it is always 1")
                continue
            values[f"recall_at_{k}"] = float((ranks < k).float().mean())
            values[f"recall_at_{k}_real"] = float((real_ranks < k).float().mean())
            values[f"recall_at_{k}_chance"] = k / len(present)
        if not values:
            raise MetricSkipped(f"{len(present)} identities leave no K below their number")
        return values

    return metric


def matching(trials: int = 10, resamples: int = 1000):
    """voice2face's 1:2 matching in the face classifier's feature space, with a bootstrap 95%
    interval; needs no identity names, so it measures speakers never heard in training."""
    if trials < 1 or resamples < 1:
        raise ValueError("trials and resamples must be at least 1")

    def metric(context: MetricContext) -> dict:
        from plugins.metrics.face_protocols import one_to_two_matching

        def features(which: str) -> np.ndarray:
            return classifier_outputs(context, which)[0].numpy()

        return one_to_two_matching(context, "matching", features, trials, resamples, "own classifier")

    return metric


@hookimpl
def register_metrics(register):
    """Register the built-in metrics (each compares generated faces with the real ones).

    ``model`` names the network behind each figure: numbers from different face models are not
    comparable, so the table, report.md and metrics.png show it beside every figure.
    """
    from plugins.metrics import face_protocols as dlib_metrics

    trained, dlib_detector, dlib_descriptor = "own classifier", "dlib-hog+68", "dlib-resnet128"
    register("landmarks68", dlib_metrics.landmarks68, better="higher", model=dlib_detector,
             description="wav2pix's measure: share of faces where dlib's detector finds a face and its 68 landmarks")
    register("face_detection", face_detection, better="higher", model="opencv-haar",
             description="share of faces where OpenCV's Haar cascade finds a face")
    register("identity_accuracy", identity_accuracy, better="higher", model=trained,
             description="wav2pix protocol: a classifier trained on real training faces names the speaker")
    register("face_verification", dlib_metrics.face_verification, better="higher", model=dlib_descriptor,
             description="share of faces within dlib's same-person distance (0.6) of the clip's real face; mean cosine")
    register("face_retrieval", dlib_metrics.face_retrieval, better="higher", model=dlib_descriptor,
             description="SF2F retrieval in dlib's space: true identity among the K nearest training identity means")
    register("face_matching", dlib_metrics.face_matching, better="higher", model=dlib_descriptor,
             description="voice2face 1:2 matching in dlib's space: nearer its own identity than another (chance 0.5)")
    register("matching", matching, better="higher", model=trained,
             description="voice2face 1:2 matching in the face classifier's space (chance 0.5); unseen speakers too")
    register("recall_at_k", recall_at_k, better="higher", model=trained,
             description="SF2F retrieval: true identity among the K nearest identity means (K = 1, 2, 5)")
    register("face_frechet", dlib_metrics.face_frechet, better="lower", model=dlib_descriptor,
             description="Fréchet distance between dlib descriptors of generated and real faces")
    register("frechet_distance", frechet_distance, better="lower", model=trained,
             description="Fréchet distance in the face classifier's features (not comparable with Inception FID)")
    register("kid", kid, better="lower", model=trained,
             description="kernel distance (KID) in the face classifier's features (not comparable with Inception KID)")
    register("fid", fid, better="lower", model="inception-v3",
             description="FID on Inception-v3 features from weights you give (--fid-weights); skipped without")
