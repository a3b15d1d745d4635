"""The built-in presets: the field's designs as named bundles of training options.

A preset is a plugin like any component (``register_presets``): ``train --preset NAME`` applies
its options over the defaults and the dataset's suggestions, and the user's own options still
win. A preset may bring stages (``zoo.Stage``), each with its objective and share of the budget.
"""

from __future__ import annotations

from zoo import Preset, hookimpl


def wav2pix() -> Preset:
    """wav2pix's model exactly (Duarte et al., ICASSP 2019): segan encoder, spectral-normed DCGAN
    generator with dropout, DCGAN discriminator, least squares, the seed's values; trained with
    our step (``gan``). ``wav2pix_exact`` trains it as the reference's code did."""
    return Preset(
        options={"encoder": "segan", "generator": "dcgan", "discriminator": "dcgan", "loss": "lsgan",
                 "terms": ("l1", "feature_matching", "identity"), "objective": "gan", "z_dim": 0,
                 "embed_dim": 128, "lr_d": 4e-4, "lr_g": 1e-4, "beta1": 0.5, "beta2": 0.999,
                 "l1_coef": 50.0, "l2_coef": 100.0, "softmax_coef": 20.0, "batch_size": 64, "epochs": 200,
                 "sample_rate": 16000, "clip_seconds": 1.0},
        reference="Duarte et al., Wav2Pix, ICASSP 2019; github.com/imatge-upc/wav2pix")


def wav2pix_exact() -> Preset:
    """wav2pix's model trained as its own code trained it: the ``gan_seed`` objective (two
    generator passes per iteration, float32, plain Adam), float32 audio, the last partial batch
    of each epoch kept, spectral norm's power iteration started from random vectors, and its
    code's defaults of 201 epochs at 128 px. docs/WAV2PIX.md lists every remaining difference."""
    options = dict(wav2pix().options)
    options.update({"objective": "gan_seed", "wave_dtype": "float32", "drop_last": False,
                    "epochs": 201, "image_size": 128,
                    "generator_args": {"sn_warmup": 0}, "discriminator_args": {"sn_warmup": 0}})
    return Preset(options=options, reference="Duarte et al., Wav2Pix, ICASSP 2019; github.com/imatge-upc/wav2pix "
                                             "(runtime.py, scripts/trainer.py, models/spectral_norm.py)")


@hookimpl
def register_presets(register):
    """Register the built-in presets."""
    register("wav2pix", wav2pix, description="wav2pix's model: segan + spectral-normed dcgan + dcgan, lsgan, the seed's values, our step")
    register("wav2pix_exact", wav2pix_exact,
             description="wav2pix trained as its code did: gan_seed objective, float32 audio, no drop_last, 201 epochs, 128 px")
