"""A small offline world in which MMF's ``mmf_run`` can train on Hateful Memes.

Everything an offline run needs is created under one folder: a synthetic dataset in
the layout of MMF's ``hateful_memes`` config (annotations, Detectron-style ``.npy``
features with their ``_info.npy``, the ``.built.json`` markers that stop MMF from
downloading), a tiny BERT vocabulary, and a BERT folder for models that always call
``from_pretrained``. ``run_overrides`` gives the ``key=value`` options that keep a run
offline and small; the models themselves stay full size so parameter counts are real.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional

import numpy as np

DATASET = "hateful_memes"
# MMF skips its download when a folder's .built.json holds the zoo version. The zoo
# (mmf/configs/zoo/datasets.yaml) writes it as 1.0_2020_10_01, which the YAML loader
# reads as this float; MMF compares the loaded values with ==.
ZOO_VERSION = 1.020201001

NUM_BOXES = 100  # ViLBERT breaks with fewer regions than its configured max_features
FEATURE_DIM = 2048
NUM_CLASSES = 1601  # Visual Genome classes of the Detectron feature extractor

SPLIT_FILES = {"train": "train.jsonl", "dev": "dev_unseen.jsonl", "test": "test_unseen.jsonl"}
SPLIT_SIZES = {"train": 16, "dev": 8, "test": 8}

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = [
    "a", "the", "when", "you", "me", "my", "is", "are", "and", "not", "this", "that",
    "people", "dog", "cat", "friend", "day", "look", "like", "love", "hate", "funny",
    "meme", "monday", "coffee", "work", "school", "home", "happy", "sad",
]

# bert-base-uncased's config.json; ViLBERT reads it through from_pretrained.
BERT_BASE_UNCASED_CONFIG = {
    "architectures": ["BertForMaskedLM"],
    "attention_probs_dropout_prob": 0.1,
    "gradient_checkpointing": False,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "hidden_size": 768,
    "initializer_range": 0.02,
    "intermediate_size": 3072,
    "layer_norm_eps": 1e-12,
    "max_position_embeddings": 512,
    "model_type": "bert",
    "num_attention_heads": 12,
    "num_hidden_layers": 12,
    "pad_token_id": 0,
    "position_embedding_type": "absolute",
    "transformers_version": "4.10.1",
    "type_vocab_size": 2,
    "use_cache": True,
    "vocab_size": 30522,
}

OFFLINE_ENV = {
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
}

CONFIGS = {
    "visual_bert": "projects/hateful_memes/configs/visual_bert/defaults.yaml",
    "vilbert": "projects/hateful_memes/configs/vilbert/defaults.yaml",
}


class World(NamedTuple):
    root: Path
    data_dir: Path
    cache_dir: Path
    save_dir: Path
    vocab_dir: Path
    bert_dir: Path

    @property
    def dataset_dir(self) -> Path:
        return self.data_dir / "datasets" / DATASET / "defaults"


def build_world(root: Path, seed: int = 0, sizes: Optional[Dict[str, int]] = None) -> World:
    """Create the dataset, vocabulary and BERT folder under ``root``; returns their paths."""
    root = Path(root)
    world = World(
        root=root,
        data_dir=root / "data",
        cache_dir=root / "cache",
        save_dir=root / "save",
        vocab_dir=root / "vocab",
        bert_dir=root / "bert-base-uncased",
    )
    rng = np.random.RandomState(seed)
    write_dataset(world.dataset_dir, rng, sizes or SPLIT_SIZES)
    write_vocab(world.vocab_dir)
    write_bert_folder(world.bert_dir)
    world.cache_dir.mkdir(parents=True, exist_ok=True)
    world.save_dir.mkdir(parents=True, exist_ok=True)
    return world


def write_dataset(dataset_dir: Path, rng: np.random.RandomState, sizes: Dict[str, int]) -> None:
    annotations = dataset_dir / "annotations"
    features = dataset_dir / "features"
    annotations.mkdir(parents=True, exist_ok=True)
    features.mkdir(parents=True, exist_ok=True)
    next_id = 10001
    for split, file_name in SPLIT_FILES.items():
        lines = []
        for index in range(sizes[split]):
            item_id = "{:05d}".format(next_id)
            next_id += 1
            text = " ".join(rng.choice(WORDS, size=rng.randint(4, 12)))
            # Alternate labels so every split has both classes (roc_auc needs them).
            item = {"id": item_id, "img": "img/{}.png".format(item_id),
                    "label": index % 2, "text": text}
            lines.append(json.dumps(item))
            write_features(features, item_id, rng)
        (annotations / file_name).write_text("\n".join(lines) + "\n")
    # Features, extras and annotations are the resources MMF would otherwise fetch.
    for folder in (dataset_dir, features, annotations):
        (folder / ".built.json").write_text(
            json.dumps({"created_at": "synthetic", "version": ZOO_VERSION})
        )


def write_features(features_dir: Path, item_id: str, rng: np.random.RandomState) -> None:
    width, height = int(rng.randint(300, 800)), int(rng.randint(300, 800))
    feats = rng.rand(NUM_BOXES, FEATURE_DIM).astype(np.float32)
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
    np.save(str(features_dir / "{}.npy".format(item_id)), feats)
    np.save(str(features_dir / "{}_info.npy".format(item_id)), info)


def write_vocab(vocab_dir: Path) -> None:
    """A BERT WordPiece vocabulary of the synthetic words, loadable by AutoTokenizer."""
    vocab_dir.mkdir(parents=True, exist_ok=True)
    (vocab_dir / "vocab.txt").write_text("\n".join(SPECIAL_TOKENS + WORDS) + "\n")
    (vocab_dir / "tokenizer_config.json").write_text(
        json.dumps(
            {"do_lower_case": True, "model_max_length": 512, "tokenizer_class": "BertTokenizer"}
        )
    )
    (vocab_dir / "special_tokens_map.json").write_text(
        json.dumps(
            {"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]",
             "cls_token": "[CLS]", "mask_token": "[MASK]"}
        )
    )
    (vocab_dir / "config.json").write_text(
        json.dumps(dict(BERT_BASE_UNCASED_CONFIG, vocab_size=len(SPECIAL_TOKENS) + len(WORDS)))
    )


def write_bert_folder(bert_dir: Path) -> None:
    """bert-base-uncased's config with an empty state dict: from_pretrained initialises
    every weight randomly, which is all a shape-level run needs."""
    import torch

    bert_dir.mkdir(parents=True, exist_ok=True)
    (bert_dir / "config.json").write_text(json.dumps(BERT_BASE_UNCASED_CONFIG, indent=2))
    torch.save({}, str(bert_dir / "pytorch_model.bin"))


def run_overrides(
    world: World,
    model: str,
    max_updates: int = 2,
    batch_size: int = 4,
    run_type: str = "train_val",
) -> List[str]:
    """``key=value`` options for an offline, few-update ``mmf_run`` in ``world``."""
    prefix = "dataset_config.{}.".format(DATASET)
    opts = [
        "config=" + CONFIGS[model],
        "model=" + model,
        "dataset=" + DATASET,
        "run_type=" + run_type,
        "env.data_dir=" + str(world.data_dir),
        "env.cache_dir=" + str(world.cache_dir),
        "env.save_dir=" + str(world.save_dir / model),
        prefix + "features.train=" + DATASET + "/defaults/features",
        prefix + "features.val=" + DATASET + "/defaults/features",
        prefix + "features.test=" + DATASET + "/defaults/features",
        prefix + "processors.text_processor.params.tokenizer_config.type="
        + str(world.vocab_dir),
        prefix + "processors.text_processor.params.max_seq_length=32",
        "training.max_updates={}".format(max_updates),
        "training.batch_size={}".format(batch_size),
        "training.num_workers=0",
        "training.log_interval=1",
        "training.evaluation_interval={}".format(max_updates),
        "training.checkpoint_interval={}".format(max_updates),
        "training.tensorboard=False",
        "training.seed=1",
        "scheduler.params.num_warmup_steps=1",
        "evaluation.use_cpu=True",
        # MMF records git details of its own checkout; a checkout at a pinned commit has a
        # detached HEAD, on which GitPython's active_branch raises.
        "checkpoint.save_git_details=False",
    ]
    if model == "visual_bert":
        # Built from BertConfig, no hub download. MMF decodes values with literal_eval:
        # only the literal None becomes None ("null" would stay a string).
        opts.append("model_config.visual_bert.bert_model_name=None")
    else:
        opts.append("model_config.{}.bert_model_name={}".format(model, world.bert_dir))
    return opts


def run_env(world: World, base: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """Environment for an ``mmf_run`` subprocess: offline, caches inside ``world``."""
    env = dict(os.environ if base is None else base)
    env.update(OFFLINE_ENV)
    env["MMF_CACHE_DIR"] = str(world.cache_dir)
    env["TORCH_HOME"] = str(world.cache_dir / "torch")
    env["HF_HOME"] = str(world.cache_dir / "huggingface")
    env["TRANSFORMERS_CACHE"] = str(world.cache_dir / "huggingface" / "transformers")
    env["TOKENIZERS_PARALLELISM"] = "false"
    return env
