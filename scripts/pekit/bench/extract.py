"""Region-feature extraction throughput: MMF's FRCNN extractor as `pekit features mmh` runs it.

Images are synthetic JPEGs of MMHS150K's resized size; throughput does not depend on what they
show, since the extractor always keeps 100 boxes. With the FRCNN weights present they are
loaded; without them the same network is randomly initialised (the same computation).
"""

from __future__ import annotations

import time
from pathlib import Path

# MMHS150K's img_resized images are at most 500 pixels a side.
IMAGE_SIZE = (500, 500)


def write_images(folder, count, seed=0):
    import numpy as np
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        path = folder / f"{i + 1}.jpg"
        if not path.is_file():
            pixels = rng.integers(0, 255, size=(IMAGE_SIZE[1], IMAGE_SIZE[0], 3), dtype=np.uint8)
            Image.fromarray(pixels).save(str(path), format="JPEG")
        paths.append(path)
    return paths


def find_model(frcnn_dir=None, data_dir=None):
    """(config.yaml, weights or None, why) of the FRCNN; config None when there is none."""
    if frcnn_dir:
        folder = Path(frcnn_dir)
    else:
        from ..features.frcnn import default_model_dir

        folder = default_model_dir(data_dir)
    config, weights = folder / "config.yaml", folder / "pytorch_model.bin"
    if not config.is_file():
        return (
            None,
            None,
            f"no FRCNN config.yaml in {folder} (`pekit assets fetch frcnn-vg-finetuned --allow-unverified`, or --frcnn-dir)",
        )
    return config, (weights if weights.is_file() else None), str(folder)


def measure(mmf_src, config, weights, device, images, batch_size, workdir):
    """images/s after the first batch (model warm-up)."""
    import torch

    from ..features.frcnn import Extractor

    extractor = Extractor(mmf_src, config, weights, str(device), num_boxes=100)
    paths = write_images(Path(workdir) / "images", images)
    batches = [paths[i : i + batch_size] for i in range(0, len(paths), batch_size)]
    extractor.extract(batches[0])
    done = 0
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for batch in batches[1:]:
        results = extractor.extract(batch)
        done += len(results)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    return {
        "weights": "loaded" if weights else "random init",
        "batch_size": batch_size,
        "images": len(paths),
        "images_timed": done,
        "image_size": list(IMAGE_SIZE),
        "images_per_s": done / seconds if done and seconds > 0 else None,
    }
