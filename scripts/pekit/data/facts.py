"""Dataset facts (split sizes, label codes, file names) read from facts/datasets.json."""

import json

from ..core.errors import UsageError
from ..core.pins import FACTS_DIR

DATASETS_FILE = FACTS_DIR / "datasets.json"


def dataset_facts(name):
    with open(DATASETS_FILE, encoding="utf-8") as f:
        facts = json.load(f)
    if name not in facts:
        raise UsageError(f"unknown dataset '{name}' (expected one of {', '.join(sorted(facts))})")
    return facts[name]
