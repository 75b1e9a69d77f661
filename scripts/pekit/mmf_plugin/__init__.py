"""MMF user dir of the kit: registers the `mmh` (MMHS150K) dataset without touching MMF's tree.

Give it to MMF as env.user_dir=<this folder> (or MMF_USER_DIR); `pekit.data.plugin_dir()` returns
the path. Importing it needs MMF.
"""

from . import builder  # noqa: F401  (registers the builder with MMF's registry)
