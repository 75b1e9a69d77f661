"""MMF batches at the paper's shapes, built as MMF's hateful_memes features dataset builds them.

One sample is what HatefulMemesFeaturesDataset.__getitem__ returns with the project configs of
VisualBERT and ViLBERT: the bert_tokenizer processor's fields (input_ids, input_mask,
segment_ids, lm_label_ids, tokens, text; max_seq_length 128), id, image_feature_0 (100 x 2048)
and image_info_0 from MMF's feature reader (ViLBERT's passes through MMF's
transformer_bbox processor), targets. MMF's BatchCollator makes the SampleList.
"""

from __future__ import annotations

from ..facts.vocabulary import DATASETS, HMD, MODELS

# The paper's shapes.
BATCH_SIZE = 16
SEQ_LEN = 128
NUM_BOXES = 100
FEATURE_DIM = 2048

# bert-base-uncased: vocabulary size and the ids of [CLS], [SEP], [PAD].
VOCAB_SIZE = 30522
CLS_ID, SEP_ID, PAD_ID = 101, 102, 0
# Meme texts are short: 8 to 40 word pieces before [CLS] and [SEP].
TEXT_TOKENS = (8, 40)


def mmf_dataset():
    """MMF's name of the dataset whose batches these are (HMD's)."""
    return DATASETS[HMD].mmf_name


def text_fields(rng, seq_len=SEQ_LEN):
    """The bert_tokenizer processor's output for a random text (mask_probability 0)."""
    import torch

    n = int(rng.integers(TEXT_TOKENS[0], TEXT_TOKENS[1] + 1))
    n = min(n, seq_len - 2)
    ids = [CLS_ID] + [int(x) for x in rng.integers(1000, VOCAB_SIZE, size=n)] + [SEP_ID]
    used = len(ids)
    input_ids = torch.full((seq_len,), PAD_ID, dtype=torch.long)
    input_ids[:used] = torch.tensor(ids, dtype=torch.long)
    input_mask = torch.zeros(seq_len, dtype=torch.long)
    input_mask[:used] = 1
    tokens = ["[CLS]"] + [f"w{x}" for x in ids[1:-1]] + ["[SEP]"]
    return {
        "input_ids": input_ids,
        "input_mask": input_mask,
        "segment_ids": torch.zeros(seq_len, dtype=torch.long),
        "lm_label_ids": torch.full((seq_len,), -1, dtype=torch.long),
        "tokens": tokens,
        "text": tokens,
    }


def reader_output(rng, num_boxes=NUM_BOXES, dim=FEATURE_DIM):
    """(image_feature_0, image_info_0) as MMF's padded FRCNN feature reader returns them."""
    import torch

    from ..features.files import synthetic_features

    features, info = synthetic_features(rng, num_boxes=num_boxes, dim=dim)
    info = dict(info, max_features=torch.tensor(num_boxes, dtype=torch.long))
    return torch.from_numpy(features), info


def bbox_processor(model):
    """MMF's transformer_bbox processor for ViLBERT (its project config has one), else None."""
    if not MODELS[model].bbox_processor:
        return None
    from mmf.datasets.processors.processors import TransformerBboxProcessor
    from omegaconf import OmegaConf

    return TransformerBboxProcessor(
        OmegaConf.create(
            {
                "bbox_key": "bbox",
                "image_width_key": "image_width",
                "image_height_key": "image_height",
            }
        )
    )


def make_sample(item_id, text, feature, info, label, bbox=None):
    """A Sample as HatefulMemesFeaturesDataset.__getitem__ assembles it."""
    import torch
    from mmf.common.sample import Sample

    sample = Sample()
    sample.text = text["text"]
    sample.update(text)
    sample.id = torch.tensor(int(item_id), dtype=torch.int)
    if bbox is not None:
        info = bbox(dict(info))
    sample.update({"image_feature_0": feature, "image_info_0": info})
    sample.targets = torch.tensor(label, dtype=torch.long)
    return sample


def collate(samples, dataset_type="train"):
    from mmf.common.batch_collator import BatchCollator

    return BatchCollator(mmf_dataset(), dataset_type)(samples)


def synthetic_batch(model, batch_size=BATCH_SIZE, seed=0, seq_len=SEQ_LEN):
    """A SampleList of `batch_size` random samples for `model` at the paper's shapes."""
    import numpy as np

    rng = np.random.default_rng(seed)
    bbox = bbox_processor(model)
    samples = []
    for i in range(batch_size):
        feature, info = reader_output(rng)
        samples.append(make_sample(i, text_fields(rng, seq_len), feature, info, i % 2, bbox))
    return collate(samples)
