"""Metrics, one concept per module: spectrum, patterns, pairs, gradients."""
