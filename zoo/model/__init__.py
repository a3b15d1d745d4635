"""The speech-to-face model: its JSON description, building it, checkpoints and the inference pipeline."""
