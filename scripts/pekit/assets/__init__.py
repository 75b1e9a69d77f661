"""Offline assets: `pekit assets list|fetch`.

    specs.py      facts/assets.json as Asset specs: what is downloaded, from where, its sha256
    download.py   downloading (resumable, verified), unpacking, MMF's markers, transformers' cache

Downloads what MMF and transformers would otherwise fetch at run time (pre-trained checkpoints,
Hateful Memes features, bert-base-uncased, the Faster R-CNN extractor), verifies each file's
sha256, unpacks archives where MMF expects them and writes MMF's `.built.json` markers, so that a
later run with the network off downloads nothing. Downloads resume from a `.part` file (HTTP
Range) and go through requests (proxies and CA bundles from the environment, retries); a
checksum mismatch deletes the partial file. requests is imported only to download: listing, and
every other command, loads with the standard library alone (the paper profile's Python 3.7).
"""

from .download import extract, fetch, marker_value, state
from .specs import Asset, AssetFacts, AssetFile, load_facts

__all__ = [
    "Asset",
    "AssetFacts",
    "AssetFile",
    "extract",
    "fetch",
    "load_facts",
    "marker_value",
    "state",
]
