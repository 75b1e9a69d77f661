"""Dataset facts (split sizes, label codes, file names) read from facts/datasets.json."""

from ..core import jsonfile
from ..core.errors import UsageError
from .pins import FACTS_DIR

DATASETS_FILE = FACTS_DIR / "datasets.json"


def dataset_facts(name):
    facts = jsonfile.load(DATASETS_FILE, "the kit's dataset facts")
    if name not in facts:
        raise UsageError(f"unknown dataset '{name}' (expected one of {', '.join(sorted(facts))})")
    return facts[name]
