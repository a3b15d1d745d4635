"""SF2F's presets: the options of their ``options/vox/sf2f/sf2f_1st_stage.yaml`` (and the ``mid``
one at 128 px) and ``options/opts.py``, mapped onto ours.

- ``gan_loss_type: gan`` -> ``--loss bce`` (binary cross entropy on logits, non-saturating G).
- ``l1_pixel_loss_weight: 10`` -> the ``l1`` term at ``l1_coef`` 10.
- ``perceptual_loss_weight: 100`` -> the ``perceptual`` term at 100 (FaceNet is not available
  offline: by default the discriminator's identity features stand in; ``--arg
  objective.facenet_weights=PATH`` takes a user's TorchScript FaceNet).
- ``ac_loss_weight: 0.05`` (times ``d_loss_weight`` 1) -> the ``face_identity`` term at 0.05 for
  the generator and ``classifier_coef`` 0.05 for the discriminator's classifier on real faces.
- Adam at 5e-4 with betas (0.9, 0.999), batch 16; the 512-d embedding, no noise.
- Windows: theirs are random crops of 100 to 150 frames; ours have the run's ``clip_seconds``
  (left to the dataset: 1 s, 100 frames, by default; 1.25 s is their 125-frame inference window).
- Two stages, as their two configurations: ``gan`` (``sf2f_1st_stage.yaml``) and ``fuser``
  (``sf2f_fuser.yaml``: the attention fuser trained with encoder and decoder frozen). The split of
  the budget, 80% and 20%, is ours: their configurations do not fix one.
"""

from __future__ import annotations

from zoo import Preset, Stage

REFERENCE = "Bai, Ma, Wang and Zhang, Speech Fusion to Face, ACM MM 2022; github.com/BAI-Yeqi/SF2F_PyTorch"
AC_WEIGHT = 0.05
STAGES = (Stage("gan", "gan", share=0.8), Stage("fuser", "fuser", share=0.2))


def options(image_size: int) -> dict:
    """SF2F's training options at ``image_size``."""
    return {"encoder": "sf2f", "generator": "sf2f", "discriminator": "sf2f", "loss": "bce",
            "terms": ("l1", "perceptual", "face_identity"), "l1_coef": 10.0,
            "term_coefs": {"perceptual": 100.0, "face_identity": AC_WEIGHT},
            "objective_args": {"classifier_coef": AC_WEIGHT}, "objective": "gan", "fuser": "sf2f_attention", "z_dim": 0,
            "embed_dim": 512, "image_size": image_size, "lr_d": 5e-4, "lr_g": 5e-4, "beta1": 0.9,
            "beta2": 0.999, "batch_size": 16, "ema": 0.0, "augment": ""}


def sf2f() -> Preset:
    """SF2F at 64 px; see the module docstring."""
    return Preset(options=options(64), stages=STAGES, reference=REFERENCE)


def sf2f_128() -> Preset:
    """SF2F at 128 px."""
    return Preset(options=options(128), stages=STAGES, reference=REFERENCE)
