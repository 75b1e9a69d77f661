"""Dataset facts (split sizes, label codes, file names) read from facts/datasets.json."""

import json
from pathlib import Path

DATASETS_FILE = Path(__file__).resolve().parent.parent / "facts" / "datasets.json"


def dataset_facts(name):
    with open(DATASETS_FILE, encoding="utf-8") as f:
        return json.load(f)[name]
