"""Built-in plugin module datasets: its components arrive with their issue."""
