"""MMF loads checkpoints that carry more than tensors (its zoo's do) on torch >= 2.6."""

from __future__ import annotations

import pytest


@pytest.mark.mmf
def test_checkpoint_with_config_object_loads(mmf_installed, tmp_path):
    import torch
    from mmf.utils.checkpoint import get_ckpt_from_path
    from omegaconf import OmegaConf

    config = OmegaConf.create({"model_config": {"visual_bert": {"hidden_size": 768}}})
    path = tmp_path / "pretrained.ckpt"
    torch.save({"model": {"w": torch.arange(3.0)}, "config": config}, str(path))
    with pytest.raises(Exception, match="(?i)weights.only|unpickl"):
        torch.load(str(path))  # what MMF's unpatched call does on this torch
    ckpt = get_ckpt_from_path(str(path))
    assert torch.equal(ckpt["model"]["w"], torch.arange(3.0))
    assert ckpt["config"].model_config.visual_bert.hidden_size == 768
