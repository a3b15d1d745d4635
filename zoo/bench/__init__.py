"""Benchmarks: the timed measurements, FLOP counts and the seed-style reference iteration."""
