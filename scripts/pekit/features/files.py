"""Region-feature files as MMF's feature readers load them: <name>.npy + <name>_info.npy.

<name>.npy is a float32 array (boxes x 2048); <name>_info.npy a pickled dict with bbox
(boxes x 4, x1 y1 x2 y2 in pixels of the original image), num_boxes, objects, cls_prob,
image_width, image_height (what MMF's tools/scripts/features/frcnn extractor writes). The
`.npy` is written last, so its presence marks a finished image (extraction resumes after it).
"""

import os

from ..core import atomic


def feature_paths(out_dir, name):
    return (
        os.path.join(os.fspath(out_dir), name + ".npy"),
        os.path.join(os.fspath(out_dir), name + "_info.npy"),
    )


def is_done(out_dir, name):
    return all(os.path.isfile(p) for p in feature_paths(out_dir, name))


def write_features(out_dir, name, features, info):
    import numpy as np

    feat_path, info_path = feature_paths(out_dir, name)
    with atomic.open_binary(info_path) as f:
        np.save(f, info, allow_pickle=True)
    with atomic.open_binary(feat_path) as f:
        np.save(f, np.ascontiguousarray(features, dtype=np.float32))


def synthetic_features(rng, num_boxes=100, dim=2048, width=640, height=480, num_classes=1600):
    """Random but well-formed features and info (tests, offline worlds)."""
    import numpy as np

    x1 = rng.uniform(0, width / 2, size=num_boxes)
    y1 = rng.uniform(0, height / 2, size=num_boxes)
    x2 = x1 + rng.uniform(1, width / 2, size=num_boxes)
    y2 = y1 + rng.uniform(1, height / 2, size=num_boxes)
    info = {
        "bbox": np.stack([x1, y1, x2, y2], axis=1).astype(np.float32),
        "num_boxes": num_boxes,
        "objects": rng.integers(0, num_classes, size=num_boxes),
        "cls_prob": rng.uniform(0, 1, size=num_boxes).astype(np.float32),
        "image_width": width,
        "image_height": height,
    }
    return rng.standard_normal((num_boxes, dim)).astype(np.float32), info


# What the pickle of a numpy object array (an _info.npy dict of arrays and numbers) may name:
# numpy's own array and scalar rebuilders, under numpy 1's and numpy 2's module names. Anything
# else (os.system, builtins.eval, ...) in a user's file is refused before it is called.
_SAFE_GLOBALS = {
    (module, name)
    for module in ("numpy.core.multiarray", "numpy._core.multiarray")
    for name in ("_reconstruct", "scalar")
} | {("numpy", "ndarray"), ("numpy", "dtype")}


def load_array(path, objects=False):
    """The array in the .npy file `path`, read without running code from it: a plain array
    with numpy's own reader (no pickle), an object array (`objects`: the _info.npy dicts) with
    an unpickler that admits only numpy's array and scalar rebuilders."""
    import pickle

    import numpy as np
    from numpy.lib import format as npy

    if not objects:
        return np.load(str(path), allow_pickle=False)

    class Restricted(pickle.Unpickler):
        def find_class(self, module, name):
            if (module, name) in _SAFE_GLOBALS:
                return super().find_class(module, name)
            raise pickle.UnpicklingError(f"it names {module}.{name}, which is not numpy data")

    with open(str(path), "rb") as f:
        version = npy.read_magic(f)
        shape, _, dtype = npy._read_array_header(f, version)
        if not dtype.hasobject:
            f.seek(0)
            return np.load(f, allow_pickle=False)
        try:
            array = Restricted(f).load()
        except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError) as e:
            raise ValueError(f"not a pickle of numpy data: {e}") from None
    if not isinstance(array, np.ndarray) or array.shape != shape:
        raise ValueError("the pickled array is not the one its header describes")
    return array
