"""Audio, images and video: decoding, resampling, converting and writing, nothing else."""
