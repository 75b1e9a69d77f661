"""RunSpec: one point of the experiment matrix (dataset, model, mode and its size, seed, how to
train) and the folder that holds it; `matrix` spans them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from ..core.errors import UsageError
from ..data.paths import mmf_data_dir
from ..facts import settings as settings_mod
from ..facts import vocabulary

LOG = "train.log"
SAVE_DIR = "mmf"

# The seeds MMF seeds reproducibly. mmf_cli/run.py main() seeds each process with
# set_seed(seed if seed == -1 else seed + get_rank()), and mmf/utils/env.py set_seed(seed) does
# `if seed:` (0 seeds nothing: a run that cannot be repeated), `if seed == -1:` (a seed from the
# pid, the clock and os.urandom), then np.random.seed(seed) (numpy takes 0 to 2**32 - 1 and
# raises ValueError otherwise: any other negative seed, or 2**32 and up), torch.manual_seed(seed)
# and random.seed(seed). A run on N GPUs seeds its processes seed + 0 ... seed + N - 1, so a
# seed is reproducible exactly when 1 <= seed and seed + N - 1 <= 2**32 - 1.
SEED_MAX = 2**32 - 1


def seed_limit(processes=1):
    """The largest seed a run of `processes` processes (GPUs over every node) is seeded
    reproducibly with (see SEED_MAX)."""
    return SEED_MAX - (max(int(processes), 1) - 1)


SEED_WHY = (
    " (MMF's set_seed seeds nothing for 0, a random seed for -1, and numpy takes seeds below "
    "2**32, each GPU's process seeding seed + its rank)"
)


@dataclass(frozen=True)
class RunSpec:
    results: Path
    dataset: str
    model: str
    mode: str
    seed: int
    settings: settings_mod.TrainingSettings = settings_mod.PAPER
    batch: Optional[int] = None  # global batch; None: the settings'
    gpus: int = 1  # GPUs (MMF processes) on each node
    nodes: int = 1  # SLURM nodes, started by srun (run/command.py)
    data_dir: Optional[str] = None
    extra: Sequence[str] = field(default_factory=tuple)  # MMF overrides appended last
    config: Optional[str] = None  # an MMF config instead of the paper's project config
    size: Optional[int] = None  # PE's reduction, LoRA's rank; None (or the default): the mode's

    def __post_init__(self):
        for kind in ("dataset", "model", "mode"):
            vocabulary.check(kind, getattr(self, kind))
        object.__setattr__(self, "size", vocabulary.check_size(self.mode, self.size))
        object.__setattr__(self, "results", Path(self.results).resolve())
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise UsageError(f"seed {self.seed!r}: expected a whole number")
        object.__setattr__(self, "extra", tuple(self.extra))
        if self.batch is None:
            object.__setattr__(self, "batch", self.settings.batch_size)
        if int(self.gpus) < 1:
            raise UsageError(f"--gpus must be at least 1, got {self.gpus}")
        if int(self.nodes) < 1:
            raise UsageError(f"--nodes must be at least 1, got {self.nodes}")
        if not 1 <= self.seed <= seed_limit(self.world_size):
            raise UsageError(
                f"--seeds: expected whole numbers from 1 to {seed_limit(self.world_size)} with "
                f"{self.processes_text}, got {self.seed}{SEED_WHY}"
            )
        if self.batch < 1 or self.batch % self.world_size:
            # MMF splits the global batch evenly over its processes, and asserts it divides.
            of = f"{self.world_size} ({self.processes_text})" if self.nodes > 1 else ""
            raise UsageError(
                f"--batch {self.batch} is not a positive multiple of {of or self.processes_text}: "
                "the global batch is split evenly over the GPUs"
            )

    @property
    def world_size(self):
        """MMF's processes over every node: one per GPU."""
        return self.gpus * self.nodes

    @property
    def processes_text(self):
        nodes = f" --nodes {self.nodes}" if self.nodes > 1 else ""
        return f"--gpus {self.gpus}{nodes}"

    @property
    def variant(self):
        """The mode at its size, as runs are named: pe, pe-red20, lora-r4."""
        return vocabulary.variant(self.mode, self.size)

    @property
    def key(self):
        return f"{self.dataset}/{self.model}/{self.variant}/seed{self.seed}"

    @property
    def dir(self):
        return self.results / "runs" / self.dataset / self.model / self.variant / f"seed{self.seed}"

    @property
    def save_dir(self):
        return self.dir / SAVE_DIR

    def describe(self):
        """What the run record keeps of the spec."""
        out = {
            "dataset": self.dataset,
            "model": self.model,
            "mode": self.mode,
            "variant": self.variant,
            "seed": self.seed,
            "settings": self.settings.name,
            "batch_size": self.batch,
            "gpus": self.gpus,
            **({"nodes": self.nodes} if self.nodes > 1 else {}),
            # Where it read its data: the report joins the memes' texts from the annotations.
            "data_dir": str(mmf_data_dir(self.data_dir)),
        }
        size = vocabulary.mode_size(self.mode, self.size)
        if size is not None:
            out["size"] = {"key": vocabulary.MODES[self.mode].size_key, "value": size}
        return out


def matrix(results, dataset, models, modes, seeds, sizes=None, **options) -> List[RunSpec]:
    """Every (model, mode at each of its sizes, seed) of `dataset`, in that order; `sizes` maps
    a mode to the sizes to run it at (its default alone when absent); `options` are RunSpec's."""
    sizes: Dict[str, Sequence[Optional[int]]] = sizes or {}
    return [
        RunSpec(results, dataset, model, mode, seed, size=size, **options)
        for model in models
        for mode in modes
        for size in sizes.get(mode) or [None]
        for seed in seeds
    ]
