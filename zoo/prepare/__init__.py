"""Prepare: raw talking-head videos in, paired face crops and speech windows out."""
