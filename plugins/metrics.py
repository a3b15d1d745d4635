"""Built-in plugin module metrics: its components arrive with their issue."""
