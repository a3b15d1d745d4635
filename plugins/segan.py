"""Built-in plugin module segan: its components arrive with their issue."""
