"""Version-checked patches of upstream files (transformers, MMF): manifest, diff engine, CLI."""
