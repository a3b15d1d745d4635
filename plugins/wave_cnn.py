"""Built-in plugin module wave_cnn: its components arrive with their issue."""
