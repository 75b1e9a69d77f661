"""What the kit downloads, as data: facts/assets.json read into Asset specs, every field checked
once here; which assets a name selects; where a file is downloaded from."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple

from ..core import jsonfile
from ..core.errors import PekitError, UsageError
from ..facts.pins import FACTS_DIR

ASSETS_FILE = FACTS_DIR / "assets.json"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class AssetFile:
    url: str
    file_name: str  # a plain name: the file lands in the asset's folder
    sha256: Optional[str]  # None: no published checksum (fetched only when allowed)
    extract: bool = False
    size: Optional[int] = None


@dataclass(frozen=True)
class Asset:
    name: str
    dest: str  # relative to MMF's data dir
    files: Tuple[AssetFile, ...]
    used_by: Tuple[str, ...] = ()
    description: str = ""
    source: Optional[str] = None
    marker_version: Optional[str] = None  # MMF's zoo version: a .built.json is written
    transformers_model: Optional[str] = None  # placed in transformers' offline cache
    needed_to_train: Tuple[str, ...] = ()  # models whose training on `used_by` reads it

    def needed_by(self, dataset, model):
        """Whether a training run of `model` on `dataset` (MMF's configs) reads this asset."""
        return dataset in self.used_by and model in self.needed_to_train

    @property
    def verified(self):
        return all(f.sha256 for f in self.files)


@dataclass(frozen=True)
class AssetFacts:
    assets: Tuple[Asset, ...]
    url_prefixes: Dict[str, str]  # MMF's mmf:// and the like, expanded
    cache_url_template: str  # transformers' hub URL of a model's file
    mmf_cache_subdir: str  # where MMF's own from_pretrained looks

    @classmethod
    def from_dict(cls, data, where="asset facts"):
        def need(value, kind, field):
            if not isinstance(value, kind):
                raise PekitError(
                    f"{where}: field {field!r} is {value!r}; expected a {kind.__name__}"
                )
            return value

        need(data, dict, "(the document)")
        cache = need(data.get("transformers_cache"), dict, "transformers_cache")
        assets = []
        for i, a in enumerate(need(data.get("assets"), list, "assets")):
            at = f"assets[{i}]"
            need(a, dict, at)
            files = []
            for j, f in enumerate(need(a.get("files"), list, f"{at}.files")):
                ft = f"{at}.files[{j}]"
                need(f, dict, ft)
                name = need(f.get("file_name"), str, f"{ft}.file_name")
                if "/" in name or name in ("", ".", ".."):
                    raise PekitError(
                        f"{where}: field '{ft}.file_name' is {name!r}; expected a name"
                    )
                sha = f.get("sha256") or None
                if sha is not None and not _SHA256.match(str(sha)):
                    raise PekitError(f"{where}: field '{ft}.sha256' is not 64 hex digits")
                size = f.get("size")
                if size is not None and (type(size) is not int or size < 0):
                    raise PekitError(f"{where}: field '{ft}.size' is {size!r}")
                files.append(
                    AssetFile(
                        need(f.get("url"), str, f"{ft}.url"),
                        name,
                        sha,
                        bool(f.get("extract")),
                        size,
                    )
                )
            needed = need(a.get("needed_to_train", []), list, f"{at}.needed_to_train")
            dest = need(a.get("dest"), str, f"{at}.dest")
            if dest.startswith("/") or ".." in Path(dest).parts:
                raise PekitError(
                    f"{where}: field '{at}.dest' is {dest!r}; expected a relative path"
                )
            assets.append(
                Asset(
                    name=need(a.get("name"), str, f"{at}.name"),
                    dest=dest,
                    files=tuple(files),
                    used_by=tuple(a.get("used_by") or ()),
                    description=a.get("description", ""),
                    source=a.get("source"),
                    marker_version=a.get("marker_version"),
                    transformers_model=a.get("transformers_model"),
                    needed_to_train=tuple(needed),
                )
            )
        return cls(
            assets=tuple(assets),
            url_prefixes=dict(data.get("url_prefixes") or {}),
            cache_url_template=need(
                cache.get("url_template"), str, "transformers_cache.url_template"
            ),
            mmf_cache_subdir=need(
                cache.get("mmf_cache_subdir"), str, "transformers_cache.mmf_cache_subdir"
            ),
        )

    def select(self, names=None):
        """The assets named (all when `names` is empty): names, patterns like 'vilbert.*', or a
        use (hmd, mmh)."""
        if not names:
            return list(self.assets)
        chosen = []
        for name in names:
            hits = [a for a in self.assets if fnmatch.fnmatchcase(a.name, name)]
            if not hits:
                hits = [a for a in self.assets if name in a.used_by]
            if not hits:
                known = ", ".join(a.name for a in self.assets)
                raise UsageError(f"unknown asset '{name}' (known: {known}; or a use: hmd, mmh)")
            chosen.extend(a for a in hits if a not in chosen)
        return chosen

    def url(self, file, mirror=None):
        """The address to download `file` from: MMF's mmf:// prefix expanded, or
        MIRROR/<file name>."""
        if mirror:
            return mirror.rstrip("/") + "/" + file.file_name
        for prefix, replacement in self.url_prefixes.items():
            if file.url.startswith(prefix):
                return replacement + file.url[len(prefix) :]
        return file.url


def load_facts(path=None):
    path = Path(path) if path else ASSETS_FILE
    return AssetFacts.from_dict(jsonfile.load(path, "the asset facts"), str(path))
