"""SF2F rebuilt (Bai, Ma, Wang and Zhang, "Speech Fusion to Face: Bridging the Gap Between Human's
Vocal Characteristics and Facial Imaging", ACM MM 2022; github.com/BAI-Yeqi/SF2F_PyTorch,
Apache-2.0): its voice encoder, face decoder, discriminators, perceptual term, attention fuser and presets, read
from the paper and their code and written anew.

This package is the ``sf2f`` entry point of group ``wav2pix_zoo``.
"""

from __future__ import annotations

from plugins.sf2f.decoder import SIZES, Sf2fGenerator
from plugins.sf2f.discriminator import Sf2fConditionalDiscriminator, Sf2fDiscriminator
from plugins.sf2f.encoder import Sf2fEncoder
from plugins.sf2f.fuser import AttentionFuser
from plugins.sf2f.perceptual import PerceptualTerm
from plugins.sf2f.presets import sf2f, sf2f_128
from zoo import hookimpl


@hookimpl
def register_encoders(register):
    """Register SF2F's voice encoder."""
    register("sf2f", Sf2fEncoder, family="spectrogram",
             description="SF2F's encoder (Bai et al. 2022): 40 log-mel bands, 1-D Inception 256-864, 512-d unit embedding")


@hookimpl
def register_generators(register):
    """Register SF2F's face decoder."""
    register("sf2f", Sf2fGenerator, sizes=SIZES,
             description="SF2F's decoder: linear + GLU to 4x4, upsample + conv + BatchNorm + GLU blocks, 64/128 px")


@hookimpl
def register_discriminators(register):
    """Register SF2F's discriminators: unconditional (their VoxCeleb set-up) and conditional."""
    register("sf2f", Sf2fDiscriminator, sizes=SIZES, conditional=False, classifier_head=True,
             description="SF2F's image patch discriminator with the auxiliary identity classifier")
    register("sf2f_conditional", Sf2fConditionalDiscriminator, sizes=SIZES, classifier_head=True,
             description="SF2F's patch + conditional patch (tiled embedding) discriminators, identity classifier")


@hookimpl
def register_fusers(register):
    """Register SF2F's attention fuser."""
    register("sf2f_attention", AttentionFuser,
             description="SF2F's fuser: 'general' self-attention over a speaker's segment embeddings, mean, L2 norm")


@hookimpl
def register_losses(register):
    """Register the perceptual term."""
    register("perceptual", PerceptualTerm, role="term", coefficient=100.0, needs="classifier_head",
             description="SF2F's perceptual L1 on face features: the D's identity trunk, or a user's "
                         "TorchScript FaceNet (--arg objective.facenet_weights=PATH); no FaceNet ships")


@hookimpl
def register_presets(register):
    """Register the SF2F presets."""
    register("sf2f", sf2f, description="SF2F at 64 px: Inception log-mel encoder, upsampling decoder, patch D + "
                                       "identity classifier, L1 x10, perceptual x100 (D features, not FaceNet); "
                                       "then the attention fuser with encoder and decoder frozen")
    register("sf2f_128", sf2f_128, description="SF2F at 128 px (their 'mid' configuration), the same two stages")
