"""The kit's facts: pins, vocabulary, training settings, models and datasets, read from the JSON
files beside them. Layer 1: imports only pekit.core."""
