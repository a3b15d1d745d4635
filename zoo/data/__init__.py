"""Data plumbing shared by every dataset: mismatched pairs, the loader and the preprocessing cache."""
