"""Built-in plugin module spectrogram: its components arrive with their issue."""
