"""Metrics for detection, segmentation and tracking, backed by the reference libraries."""
