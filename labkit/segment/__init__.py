"""Segmentation: tiled inference for large images and mask post-processing."""
