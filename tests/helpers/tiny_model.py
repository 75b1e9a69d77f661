"""A tiny model shaped like MMF's VisualBERT (a `model.bert` base whose layers may carry an
`AdaptBertOutput` adapter, a `model.classifier` head), a PE run's identity, and MMF's checkpoint
of a model."""

import pytest

RUN = {"dataset": "hmd", "model": "visual_bert", "mode": "pe", "seed": 1}

torch = pytest.importorskip("torch")
nn = torch.nn


class AdaptBlock(nn.Module):
    def __init__(self, hidden, reduction=4):
        super().__init__()
        self.down = nn.Linear(hidden, hidden // reduction)
        self.up = nn.Linear(hidden // reduction, hidden)

    def forward(self, x):
        return x + self.up(torch.relu(self.down(x)))


class Layer(nn.Module):
    def __init__(self, hidden, adapter):
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)
        self.LayerNorm = nn.LayerNorm(hidden)
        if adapter:
            self.AdaptBertOutput = AdaptBlock(hidden)

    def forward(self, x):
        x = self.dense(x)
        if hasattr(self, "AdaptBertOutput"):
            x = self.AdaptBertOutput(x)
        return self.LayerNorm(x)


class TinyModel(nn.Module):
    """Shaped like MMF's VisualBERT: model.bert.* base, model.classifier.* head."""

    def __init__(self, adapter=True, hidden=16):
        super().__init__()
        self.model = nn.Module()
        self.model.bert = nn.Sequential(*[Layer(hidden, adapter) for _ in range(3)])
        self.model.bert.register_buffer("position_ids", torch.arange(8))
        self.model.classifier = nn.Sequential(nn.Linear(hidden, hidden), nn.Linear(hidden, 2))

    def forward(self, x):
        return self.model.classifier(self.model.bert(x))


def mmf_checkpoint(model, path, **extra):
    config = {"model": "visual_bert", "checkpoint": {"resume_zoo": "visual_bert.pretrained.coco"}}
    ckpt = {
        "model": model.state_dict(),
        "optimizer": {},
        "num_updates": 19000,
        "best_update": 19000,
        "config": config,
    }
    ckpt.update(extra)
    torch.save(ckpt, str(path))
