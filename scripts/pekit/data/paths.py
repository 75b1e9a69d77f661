"""Where MMF looks for data, and where the kit's MMF plugin lives."""

import os
from pathlib import Path


def mmf_cache_dir():
    # MMF a34bc2d: env.cache_dir = $MMF_CACHE_DIR, else $TORCH_HOME/mmf (~/.cache/torch/mmf).
    if os.environ.get("MMF_CACHE_DIR"):
        return Path(os.environ["MMF_CACHE_DIR"]).expanduser()
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or "~/.cache", "torch"
    )
    return Path(torch_home).expanduser() / "mmf"


def mmf_data_dir(explicit=None, cache_dir=None):
    """MMF's env.data_dir: an explicit folder, else $MMF_DATA_DIR, else <cache_dir>/data.

    `cache_dir` stands for MMF's cache dir when the caller was given one. Every command of the
    kit, its Make targets (DATA_DIR's default) and the image (MMF_DATA_DIR=/mmf/data) resolve
    the data folder here: one default, one variable.
    """
    return mmf_data_dir_source(explicit, cache_dir)[0]


def mmf_data_dir_source(explicit=None, cache_dir=None):
    """(the data folder, why it is that one)."""
    if explicit:
        return Path(explicit).expanduser().resolve(), "--data-dir"
    if os.environ.get("MMF_DATA_DIR"):
        return Path(os.environ["MMF_DATA_DIR"]).expanduser().resolve(), "MMF_DATA_DIR"
    folder = (Path(cache_dir or mmf_cache_dir()).expanduser() / "data").resolve()
    return folder, "MMF's default; MMF_DATA_DIR or --data-dir change it"


def data_dir_line(explicit=None):
    """Which data folder a command uses, and why that one: '/path (MMF_DATA_DIR)'."""
    folder, source = mmf_data_dir_source(explicit)
    return f"{folder} ({source})"


def dataset_dir(name, data_dir=None):
    """<data_dir>/datasets/<name>/defaults, the folder MMF's dataset configs point into."""
    return mmf_data_dir(data_dir) / "datasets" / name / "defaults"


def plugin_dir():
    """The MMF user dir registering `mmh`; pass it as env.user_dir=<path> (or MMF_USER_DIR)."""
    return Path(__file__).resolve().parent.parent / "mmf_plugin"


if __name__ == "__main__":  # the Makefile's DATA_DIR default: plain Python, no package import
    print(mmf_data_dir())
