"""Region features for MMH, from MMF's own Faster R-CNN extractor at the pinned commit."""
