"""Compare: train several models on the same data and budget, evaluate them alike, rank them."""
