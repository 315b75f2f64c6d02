"""Chapter 5 machinery: corruptions and the robustness suite, calibration and abstention, monitoring."""
