"""Built-in plugin module losses: its components arrive with their issue."""
