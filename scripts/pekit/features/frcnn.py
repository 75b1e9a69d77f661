"""Run MMF's pure-PyTorch Faster R-CNN extractor (tools/scripts/features/frcnn) on MMH images.

tools/ is not installed by MMF's setup.py, so the code is imported from the MMF source checkout.
The extractor's own preprocessing and box post-processing are used unchanged (its FeatureExtractor
methods); the kit only replaces its command line, batching loop and file writing, which gives
100 boxes per image, resumable runs and atomic files.
"""

import argparse
import importlib
import importlib.util
import os
import re
import sys
from pathlib import Path

from ..core import jsonfile, schema
from ..core.bars import progress as progress_bar
from ..core.errors import PekitError
from ..data.paths import dataset_dir
from ..facts.vocabulary import DATASETS, MMH
from .files import is_done, write_features

FRCNN_PACKAGE = "tools.scripts.features.frcnn"
# An annotation's image: a path relative to the dataset's images folder.
_IMG = re.compile(r"^(?!/)[^\x00\n]{1,1024}$")


def locate_mmf_src(explicit=None):
    """The MMF checkout holding tools/: --mmf-src, else the kit's MMF checkout (MMF_SRC/cache)."""
    if explicit:
        root = Path(explicit).expanduser().resolve()
    else:
        from ..setup import mmf_source

        root = mmf_source.find_checkout()
        if root is None:
            raise PekitError(
                "no MMF source checkout (needed for tools/scripts/features/frcnn): pass "
                "--mmf-src, set MMF_SRC, or run `pekit mmf fetch`"
            )
    if not (root / "tools" / "scripts" / "features" / "frcnn" / "modeling_frcnn.py").is_file():
        raise PekitError(f"{root}: no tools/scripts/features/frcnn/modeling_frcnn.py in it")
    return Path(root)


def _import_frcnn(mmf_src):
    # Only the checkout's `tools` package is made importable, registered from its own folder: the
    # checkout root on sys.path would shadow the installed (patched) `mmf` with its pristine copy,
    # and a link farm would need a folder outside the kit's outputs.
    tools = Path(mmf_src).resolve() / "tools"
    loaded = sys.modules.get("tools")
    if loaded is None or list(getattr(loaded, "__path__", ())) != [str(tools)]:
        for name in [n for n in sys.modules if n == "tools" or n.startswith("tools.")]:
            del sys.modules[name]
        spec = importlib.util.spec_from_file_location(
            "tools", tools / "__init__.py", submodule_search_locations=[str(tools)]
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules["tools"] = module
        spec.loader.exec_module(module)
    names = ("frcnn_utils", "modeling_frcnn", "processing_image", "extract_features_frcnn")
    return {n: importlib.import_module(f"{FRCNN_PACKAGE}.{n}") for n in names}


class Extractor:
    """MMF's FRCNN with `num_boxes` boxes per image; weights=None gives random initialisation."""

    def __init__(self, mmf_src, config_file, weights_file=None, device=None, num_boxes=100):
        import torch

        mods = _import_frcnn(mmf_src)
        cfg = mods["frcnn_utils"].Config.from_pretrained(str(config_file))
        cfg.model.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        # Exactly num_boxes per image, as HMD's released features (MMF pads shorter ones anyway).
        cfg.max_detections = num_boxes
        cfg.min_detections = num_boxes
        rcnn = mods["modeling_frcnn"].GeneralizedRCNN
        if weights_file:
            model = rcnn.from_pretrained(str(weights_file), config=cfg)
        else:
            model = rcnn(cfg)
        model.eval()
        # The extractor's methods, without its argparse-driven __init__.
        impl = mods["extract_features_frcnn"].FeatureExtractor.__new__(
            mods["extract_features_frcnn"].FeatureExtractor
        )
        impl.args = argparse.Namespace(confidence_threshold=0.0, num_features=num_boxes)
        impl.frcnn = model
        impl.frcnn_cfg = cfg
        self._impl = impl
        self._torch = torch

    def extract(self, image_paths):
        """[(features (boxes x 2048) float32 array, info dict)] for each image path."""
        with self._torch.no_grad():
            output = self._impl.get_frcnn_features([str(p) for p in image_paths])
            results = []
            for i, path in enumerate(image_paths):
                _, feats, info = self._impl._process_features(output, i)
                # MMF's extractor stores the resized input's size, but its boxes are in the
                # original image's pixels; ViLBERT divides boxes by these, so store the original.
                info["image_width"], info["image_height"] = _image_size(path)
                results.append((feats.cpu().numpy(), info))
        return results


def _image_size(path):
    from PIL import Image

    with Image.open(str(path)) as im:
        return im.size


def mmh_images(data_dir=None):
    """(feature name, image path) of every tweet in the converted MMH annotations."""
    root = dataset_dir(DATASETS[MMH].mmf_name, data_dir)
    seen = {}
    for split in DATASETS[MMH].splits:
        path = root / "annotations" / f"{split}.jsonl"
        if not path.is_file():
            raise PekitError(f"{path} not found: run `pekit data mmh SRC` first")
        for img in annotation_images(path):
            # MMF's hateful_memes dataset reads features as <img basename without ext>.npy
            name = os.path.splitext(os.path.basename(img))[0]
            seen.setdefault(name, root / "images" / img)
    return sorted(seen.items())


def annotation_images(path):
    """The `img` of each line of a converted annotation file (JSON Lines), checked: each line an
    object whose `img` is a relative image path; a refusal names the file, line and field."""
    data = jsonfile.read_bytes(path, "annotations", limit=1 << 30)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise PekitError(f"{path}: annotations are not UTF-8 (byte {e.start})") from None
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = jsonfile.loads(line)
        except ValueError as e:
            detail = " ".join(str(e).split())[:120]
            raise PekitError(f"{path}:{number}: not valid JSON ({detail})") from None
        img = row.get("img") if isinstance(row, dict) else None
        if not isinstance(img, str) or not _IMG.match(img) or ".." in img.split("/"):
            raise PekitError(
                f"{path}:{number}: field 'img' is {schema.shown(img)}; expected a relative image"
                " path (run `pekit data mmh SRC` again)"
            )
        out.append(img)
    return out


def extract_mmh(
    extractor,
    data_dir=None,
    batch_size=8,
    limit=None,
    show_progress=True,
):
    """Extract features for every MMH image not done yet; return counts and failures."""
    items = mmh_images(data_dir)
    out = dataset_dir(DATASETS[MMH].mmf_name, data_dir) / "features"
    out.mkdir(parents=True, exist_ok=True)
    todo = [(n, p) for n, p in items if not is_done(out, n)]
    already = len(items) - len(todo)
    if limit is not None:
        todo = todo[:limit]
    failed = []
    done = 0
    bar = progress_bar(len(todo), "mmh: features", enabled=show_progress)
    try:
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            missing = [n for n, p in batch if not p.is_file()]
            failed.extend((n, "image missing") for n in missing)
            batch = [(n, p) for n, p in batch if n not in missing]
            for name, feats, info in _extract_batch(extractor, batch, failed):
                write_features(out, name, feats, info)
                done += 1
            bar.update(len(batch) + len(missing))
    finally:
        bar.close()
    return {
        "out": str(out),
        "total": len(items),
        "already_done": already,
        "extracted": done,
        "failed": failed,
    }


def _extract_batch(extractor, batch, failed):
    """Results for a batch; if it fails, image by image, so one bad image fails alone."""
    if not batch:
        return []
    try:
        results = extractor.extract([p for _, p in batch])
        return [(n, f, i) for (n, _), (f, i) in zip(batch, results)]
    except Exception as e:  # one unreadable image must not stop 150K others
        if len(batch) == 1:
            failed.append((batch[0][0], f"{type(e).__name__}: {e}"))
            return []
    out = []
    for item in batch:
        out.extend(_extract_batch(extractor, [item], failed))
    return out


FRCNN_ASSET = "frcnn-vg-finetuned"


def default_model_dir(data_dir=None):
    from .. import assets
    from ..data.paths import mmf_data_dir

    for asset in assets.load_facts().assets:
        if asset.name == FRCNN_ASSET:
            return mmf_data_dir(data_dir) / asset.dest
    raise PekitError(f"the asset facts name no '{FRCNN_ASSET}'; pass --model-dir")


def from_model_dir(
    model_dir=None, mmf_src=None, device=None, num_boxes=100, data_dir=None, option="--model-dir"
):
    """The extractor with the weights in `model_dir` (config.yaml, pytorch_model.bin), by
    default where `pekit assets fetch` puts them; a missing file says how to get it."""
    folder = Path(model_dir) if model_dir else default_model_dir(data_dir)
    config, weights = folder / "config.yaml", folder / "pytorch_model.bin"
    for path in (config, weights):
        if not path.is_file():
            raise PekitError(
                f"{path} not found (fetch it with `pekit assets fetch {FRCNN_ASSET} "
                f"--allow-unverified`, or pass {option})"
            )
    return Extractor(locate_mmf_src(mmf_src), config, weights, device, num_boxes)
