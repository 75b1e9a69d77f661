"""Infrastructure every stage uses: atomic writes, digests, errors, JSON, option types,
progress bars, the pins. Standard library only: it runs on the paper profile's Python 3.7."""
