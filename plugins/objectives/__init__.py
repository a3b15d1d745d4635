"""The built-in training objectives: how a run learns.

- ``gan``: wav2pix's conditional GAN step (``plugins.objectives.gan``), our default.
- ``gan_seed``: the same GAN trained exactly as wav2pix's own trainer did it
  (``plugins.objectives.seed``): two generator passes per iteration, float32, plain Adam.
- ``speaker_classifier``: the speech encoder and the speaker classifier on its embedding, trained
  by cross entropy alone: voice2face's pretraining stage.
"""

from __future__ import annotations

from plugins.objectives.classification import SpeakerClassifierObjective
from plugins.objectives.fusion import FuserObjective
from plugins.objectives.gan import GanObjective
from plugins.objectives.seed import SeedObjective
from zoo import hookimpl


@hookimpl
def register_objectives(register):
    """Register the built-in objectives."""
    register("gan", GanObjective, trains=("encoder", "generator", "classifier", "discriminator"),
             description="wav2pix's conditional GAN step: D on real, fake and mismatched pairs, G terms "
                         "(options: objective.r1, objective.variety)")
    register("gan_seed", SeedObjective, trains=("encoder", "generator", "classifier", "discriminator"), reference=True,
             description="wav2pix's own iteration: G run twice, five D forwards, float32, plain Adam (train --step seed)")
    register("speaker_classifier", SpeakerClassifierObjective, trains=("encoder", "classifier"),
             description="the speech encoder and its speaker classifier by cross entropy (a pretraining stage)")
    register("fuser", FuserObjective, trains=("fuser", "discriminator"), needs="fuser",
             description="SF2F's fuser stage: the fuser of a speaker's clips, encoder and generator frozen")
