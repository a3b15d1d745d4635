"""Training: configuration, the loop, the step, its parts and batches, run folders and sample sheets."""
