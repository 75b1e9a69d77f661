"""Where the kit's checkout is: the one place that computes it.

The kit runs from a checkout or an editable install, so patches/, docker/ and the tests' files
are found beside its scripts/ folder.
"""

import importlib.util
from pathlib import Path

# scripts/pekit/core/location.py -> the checkout's root
_ROOT = Path(__file__).resolve().parents[3]


def kit_root():
    """The kit's checkout root (the folder holding scripts/, patches/ and docker/)."""
    return _ROOT


def docker_profiles():
    """docker/profiles.py, the one reader of the image profiles and their locks, loaded by its
    path (docker/ is no package)."""
    path = kit_root() / "docker" / "profiles.py"
    spec = importlib.util.spec_from_file_location("pekit_docker_profiles", str(path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
