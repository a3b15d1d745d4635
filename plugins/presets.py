"""The built-in presets: the field's designs as named bundles of training options.

A preset is a plugin like any component (``register_presets``): ``train --preset NAME`` applies
its options over the defaults and the dataset's suggestions, and the user's own options still
win. A preset may bring stages (``zoo.Stage``), each with its objective and share of the budget.
"""

from __future__ import annotations

from zoo import Preset, Stage, hookimpl


def wav2pix() -> Preset:
    """wav2pix's model exactly (Duarte et al., ICASSP 2019): segan encoder, spectral-normed DCGAN
    generator with dropout, DCGAN discriminator, least squares, the seed's values; trained with
    our step (``gan``). ``wav2pix_exact`` trains it as the reference's code did."""
    return Preset(
        options={"encoder": "segan", "generator": "dcgan", "discriminator": "dcgan", "loss": "lsgan",
                 "terms": ("l1", "feature_matching", "identity"), "objective": "gan", "z_dim": 0,
                 "embed_dim": 128, "lr_d": 4e-4, "lr_g": 1e-4, "beta1": 0.5, "beta2": 0.999,
                 "l1_coef": 50.0, "l2_coef": 100.0, "softmax_coef": 20.0, "batch_size": 64, "epochs": 200,
                 "sample_rate": 16000, "clip_seconds": 1.0, "amp": False, "ema": 0.0, "augment": ""},
        reference="Duarte et al., Wav2Pix, ICASSP 2019; github.com/imatge-upc/wav2pix")


def voice2face() -> Preset:
    """voice2face (Wen, Singh and Raj, NeurIPS 2019): a log-mel CNN voice encoder pretrained as a
    speaker classifier and then frozen; an unconditional face discriminator with an identity
    classifier; the generator fools the first head and makes the classifier name the speaker."""
    return Preset(
        options={"encoder": "voice2face", "generator": "voice2face", "discriminator": "voice2face",
                 "loss": "bce", "terms": ("face_identity",), "objective": "gan", "z_dim": 0, "embed_dim": 64,
                 "lr_d": 2e-4, "lr_g": 2e-4, "beta1": 0.5, "beta2": 0.999, "ema": 0.0, "augment": ""},
        stages=(Stage("pretrain_encoder", "speaker_classifier", share=0.25, options={"lr_g": 1e-3}),
                Stage("gan", "gan", share=0.75, options={"freeze_encoder": True})),
        reference="Wen, Singh and Raj, NeurIPS 2019; github.com/cmu-mlsp/reconstructing_faces_from_voices")


def voice2face_ge2e() -> Preset:
    """voice2face with Resemblyzer's pretrained GE2E speaker encoder (frozen, 256-d) in place of the
    self-trained one: nothing to pretrain, so one GAN stage; the generator takes 256-d embeddings."""
    options = dict(voice2face().options)
    options.update({"encoder": "ge2e", "embed_dim": 256, "freeze_encoder": True})
    return Preset(options=options,
                  reference="Wen, Singh and Raj, NeurIPS 2019, with the GE2E encoder of Wan et al., ICASSP 2018 "
                            "(Resemblyzer 0.1.4's pretrained.pt)")


def retrieval() -> Preset:
    """The non-adversarial reference: name the speaker, show their mean real training face."""
    return Preset(options={"generator": "retrieval", "objective": "retrieval", "terms": (), "lr_g": 1e-3},
                  reference="a baseline of ours: speaker classification plus the identity's mean face")


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
    register("wav2pix", wav2pix, description="wav2pix exactly: segan + spectral-normed dcgan + dcgan, lsgan, the seed's values")
    register("voice2face", voice2face,
             description="voice2face: pretrained frozen log-mel encoder, unconditional D with an identity head, BCE")
    register("voice2face_ge2e", voice2face_ge2e,
             description="voice2face with Resemblyzer's pretrained GE2E encoder, frozen, 256-d (no pretraining stage)")
    register("retrieval", retrieval,
             description="baseline: the speech encoder names the speaker; the face is that identity's mean real face")
    register("wav2pix_exact", wav2pix_exact,
             description="wav2pix trained as its code did: gan_seed objective, float32 audio, no drop_last, 201 epochs, 128 px")
