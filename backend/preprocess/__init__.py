"""Preprocessing stages: gap-filling, resampling, patch datasets, the sample-data generator."""
