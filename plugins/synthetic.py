"""Built-in plugin module synthetic: its components arrive with their issue."""
