"""Built-in plugin module dcgan: its components arrive with their issue."""
