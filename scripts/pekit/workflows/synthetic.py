"""A small offline world in which MMF's ``mmf_run`` trains on Hateful Memes-shaped data: the
tests' world, and `pekit gpu-check`'s.

``build_world`` creates, under one folder, a synthetic dataset in the layout of MMF's
``hateful_memes`` config (annotations, Detectron-style ``<id>.npy`` features with their
``<id>_info.npy``, and the ``.built.json`` markers that stop MMF from downloading) and a
tiny BERT vocabulary. ``run_overrides`` gives the ``key=value`` options that keep a run
offline and short; the models stay full size, so parameter counts are the real ones.
``runner_overrides`` gives the ``--override`` values for ``pekit run`` in the world.
``run_env`` is the environment for the ``mmf_run`` subprocess.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, NamedTuple, Optional, Sequence

from ..facts import models, vocabulary

if TYPE_CHECKING:
    import numpy

# MMF skips a download when the folder's .built.json holds the zoo version. The zoo
# (mmf/configs/zoo/datasets.yaml) spells it 1.0_2020_10_01, which MMF's YAML loader reads
# as this float; MMF compares the two with ==.
ZOO_VERSION = 1.020201001

NUM_BOXES = 100  # ViLBERT breaks with fewer regions than max_features (100)
FEATURE_DIM = 2048
NUM_CLASSES = 1601  # Visual Genome classes of MMF's Detectron feature extractor

# MMF's defaults read dev_unseen and test_unseen; the kit's runner validates on dev_seen (as the
# paper did) and scores the best checkpoint on test_seen and test_unseen.
SPLIT_FILES = {
    "train": "train.jsonl",
    "dev": "dev_unseen.jsonl",
    "test": "test_unseen.jsonl",
    "dev_seen": "dev_seen.jsonl",
    "test_seen": "test_seen.jsonl",
}
SPLIT_SIZES = {"train": 16, "dev": 8, "test": 8, "dev_seen": 8, "test_seen": 8}
SPLITS = ("train", "val", "test")  # MMF's names in dataset_config

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = [
    "a",
    "the",
    "when",
    "you",
    "me",
    "my",
    "is",
    "are",
    "and",
    "not",
    "this",
    "that",
    "people",
    "dog",
    "cat",
    "friend",
    "day",
    "look",
    "like",
    "love",
    "hate",
    "funny",
    "meme",
    "monday",
    "coffee",
    "work",
    "school",
    "home",
    "happy",
    "sad",
]

OFFLINE_ENV = {"TRANSFORMERS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def __getattr__(name):
    """DATASET (MMF's name of HMD), FEATURES (its features folder, relative to MMF's
    dataset_config data_dir) and CONFIGS (MMF's hateful_memes project configs without the
    `from_*` checkpoint download), read from facts/datasets.json when first asked for: importing
    the kit's commands reads no dataset facts."""
    hmd = vocabulary.DATASETS[vocabulary.HMD]
    if name == "DATASET":
        return hmd.mmf_name
    if name == "FEATURES":
        return hmd.mmf_name + "/defaults/features"
    if name == "CONFIGS":
        return {m: hmd.mmf_defaults_config(m) for m in vocabulary.MODELS}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class World(NamedTuple):
    root: Path  # MMF's data/, cache/ and save/ live here (the layout of models.offline_overrides)
    vocab_dir: Path

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def save_dir(self) -> Path:
        return self.root / "save"

    @property
    def dataset_dir(self) -> Path:
        return self.data_dir / "datasets" / __getattr__("DATASET") / "defaults"


def build_world(
    root: Path,
    seed: int = 0,
    sizes: Optional[Dict[str, int]] = None,
    unlabelled: Sequence[str] = (),
) -> World:
    """Create the dataset and the vocabulary under ``root``.

    ``sizes`` replaces some of SPLIT_SIZES; the splits in ``unlabelled`` (keys of SPLIT_FILES)
    are written without labels, as the unlabelled test releases are.
    """
    import numpy as np

    world = World(root=Path(root), vocab_dir=Path(root) / "vocab")
    rng = np.random.RandomState(seed)
    write_dataset(world.dataset_dir, rng, dict(SPLIT_SIZES, **(sizes or {})), unlabelled)
    write_vocab(world.vocab_dir)
    for folder in (world.root / "cache", world.save_dir):
        folder.mkdir(parents=True, exist_ok=True)
    return world


def write_dataset(
    dataset_dir: Path,
    rng: numpy.random.RandomState,
    sizes: Dict[str, int],
    unlabelled: Sequence[str] = (),
) -> None:
    annotations = dataset_dir / "annotations"
    features = dataset_dir / "features"
    annotations.mkdir(parents=True, exist_ok=True)
    features.mkdir(parents=True, exist_ok=True)
    next_id = 10001
    for split, file_name in SPLIT_FILES.items():
        lines = []
        for index in range(sizes[split]):
            item_id = f"{next_id:05d}"
            next_id += 1
            text = " ".join(rng.choice(WORDS, size=rng.randint(4, 12)))
            # Labels 0, 0, 1, 1, ...: every split holds both classes, which roc_auc needs, and so
            # does each half that two processes' DistributedSampler deals (every other example).
            label = (index // 2) % 2
            item = {"id": item_id, "img": f"img/{item_id}.png", "label": label, "text": text}
            if split in unlabelled:
                del item["label"]
            lines.append(json.dumps(item))
            write_features(features, item_id, rng)
        (annotations / file_name).write_text("\n".join(lines) + "\n")
    # The zoo lists features and extras for hateful_memes; annotations get a marker too so
    # that MMF does not even create folders there.
    for folder in (dataset_dir, features, annotations):
        marker = {"created_at": "synthetic", "version": ZOO_VERSION}
        (folder / ".built.json").write_text(json.dumps(marker))


def write_features(features_dir: Path, item_id: str, rng: numpy.random.RandomState) -> None:
    import numpy as np

    width, height = int(rng.randint(300, 800)), int(rng.randint(300, 800))
    x0 = rng.uniform(0, width / 2, NUM_BOXES)
    y0 = rng.uniform(0, height / 2, NUM_BOXES)
    x1 = x0 + rng.uniform(1, width / 2, NUM_BOXES)
    y1 = y0 + rng.uniform(1, height / 2, NUM_BOXES)
    cls_prob = rng.rand(NUM_BOXES, NUM_CLASSES).astype(np.float32)
    cls_prob /= cls_prob.sum(axis=1, keepdims=True)
    info = {
        "bbox": np.stack([x0, y0, x1, y1], axis=1).astype(np.float32),
        "num_boxes": NUM_BOXES,
        "objects": cls_prob.argmax(axis=1),
        "cls_prob": cls_prob,
        "image_width": width,
        "image_height": height,
    }
    feats = rng.rand(NUM_BOXES, FEATURE_DIM).astype(np.float32)
    np.save(str(features_dir / f"{item_id}.npy"), feats)
    np.save(str(features_dir / f"{item_id}_info.npy"), info)


def write_vocab(vocab_dir: Path) -> None:
    """A WordPiece vocabulary of the synthetic words that AutoTokenizer loads from disk."""
    vocab_dir.mkdir(parents=True, exist_ok=True)
    (vocab_dir / "vocab.txt").write_text("\n".join(SPECIAL_TOKENS + WORDS) + "\n")
    # tokenizer_class spares AutoTokenizer from looking for a model config.
    config = {"do_lower_case": True, "model_max_length": 512, "tokenizer_class": "BertTokenizer"}
    (vocab_dir / "tokenizer_config.json").write_text(json.dumps(config))
    special = {
        "unk_token": "[UNK]",
        "sep_token": "[SEP]",
        "pad_token": "[PAD]",
        "cls_token": "[CLS]",
        "mask_token": "[MASK]",
    }
    (vocab_dir / "special_tokens_map.json").write_text(json.dumps(special))


def run_overrides(
    world: World,
    model: str,
    mode: str,
    max_updates: int = 2,
    batch_size: int = 4,
    run_type: str = "train_val",
) -> List[str]:
    """``key=value`` options for an offline ``mmf_run`` of ``model`` in ``mode`` in ``world``.

    Trains ``max_updates`` updates, then evaluates on the dev split and checkpoints once.
    """
    save_dir = world.save_dir / f"{model}-{mode}"
    # models.offline_overrides puts every run in one save dir; each run gets its own here.
    offline = [o for o in models.offline_overrides(model, world.root) if "save_dir=" not in o]
    dataset, features = __getattr__("DATASET"), __getattr__("FEATURES")
    text = f"dataset_config.{dataset}.processors.text_processor.params."
    return [
        f"config={__getattr__('CONFIGS')[model]}",
        f"model={model}",
        f"dataset={dataset}",
        f"run_type={run_type}",
        *offline,
        f"env.save_dir={save_dir}",
        *vocabulary.mode_overrides(model, mode),
        # The hateful_memes config reads an LMDB; the world holds per-image .npy files.
        *(f"dataset_config.{dataset}.features.{split}={features}" for split in SPLITS),
        f"{text}tokenizer_config.type={world.vocab_dir}",
        f"{text}max_seq_length=32",
        f"training.max_updates={max_updates}",
        f"training.batch_size={batch_size}",
        "training.num_workers=0",
        "training.log_interval=1",
        f"training.evaluation_interval={max_updates}",
        # Only the checkpoints written by the end-of-training evaluation.
        f"training.checkpoint_interval={max_updates + 1}",
        "training.tensorboard=False",
        "training.seed=1",
        "scheduler.params.num_warmup_steps=1",
        # MMF records git details of its own checkout, and GitPython raises on the
        # detached HEAD of a checkout at the pinned commit.
        "checkpoint.save_git_details=False",
    ]


def runner_overrides(world: World, model: str, dataset: Optional[str] = None) -> List[str]:
    """The ``--override`` values that keep a ``pekit run`` of ``model`` on ``dataset`` offline.

    The runner sets the rest (config, mode, training settings, data and save dirs); these give the
    random-init model, the world's cache and vocabulary, and, for hateful_memes (the default
    ``dataset``), its features.
    """
    hmd = __getattr__("DATASET")
    dataset = hmd if dataset is None else dataset
    runner_sets = ("env.data_dir=", "env.save_dir=")
    offline = [
        o for o in models.offline_overrides(model, world.root) if not o.startswith(runner_sets)
    ]
    text = f"dataset_config.{dataset}.processors.text_processor.params."
    out = offline + [f"{text}tokenizer_config.type={world.vocab_dir}", f"{text}max_seq_length=32"]
    if dataset == hmd:
        features = __getattr__("FEATURES")
        out += [f"dataset_config.{hmd}.features.{split}={features}" for split in SPLITS]
    return out + ["training.tensorboard=False"]


def run_command(world: World, model: str, mode: str, **kwargs) -> List[str]:
    """The ``mmf_run`` command line, run with the current Python."""
    return [sys.executable, "-m", "mmf_cli.run", *run_overrides(world, model, mode, **kwargs)]


def run_env(world: World, base: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """Environment for an ``mmf_run`` subprocess: offline, every cache inside ``world``."""
    cache = world.root / "cache"
    env = dict(os.environ if base is None else base)
    env.update(OFFLINE_ENV)
    env.update(
        MMF_CACHE_DIR=str(cache),
        TORCH_HOME=str(cache / "torch"),
        HF_HOME=str(cache / "huggingface"),
        TRANSFORMERS_CACHE=str(cache / "huggingface" / "transformers"),
        TOKENIZERS_PARALLELISM="false",
    )
    return env
