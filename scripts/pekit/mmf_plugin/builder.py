"""Builder `mmh`: MMHS150K as converted by `pekit data mmh`, read like MMF's hateful_memes."""

import os

from mmf.common.registry import registry
from mmf.datasets.builders.hateful_memes.dataset import (
    HatefulMemesFeaturesDataset,
    HatefulMemesImageDataset,
)
from mmf.datasets.mmf_dataset_builder import MMFDatasetBuilder
from mmf.utils.configuration import get_mmf_env
from mmf.utils.file_io import PathManager
from mmf.utils.general import get_absolute_path

CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")
DATASET_NAME = "mmh"


class MMHFeaturesDataset(HatefulMemesFeaturesDataset):
    # The parent maps img "img_resized/<tweet_id>.jpg" to features "<tweet_id>.npy", which is
    # exactly how `pekit features mmh` names them; ids are the converter's running integers.
    def __init__(self, config, *args, dataset_name=DATASET_NAME, **kwargs):
        super().__init__(config, *args, dataset_name=dataset_name, **kwargs)


class MMHImageDataset(HatefulMemesImageDataset):
    def __init__(self, config, *args, dataset_name=DATASET_NAME, **kwargs):
        super().__init__(config, *args, dataset_name=dataset_name, **kwargs)


@registry.register_builder(DATASET_NAME)
class MMHBuilder(MMFDatasetBuilder):
    def __init__(self, dataset_name=DATASET_NAME, dataset_class=MMHImageDataset, *args, **kwargs):
        super().__init__(dataset_name, dataset_class, *args, **kwargs)

    @classmethod
    def config_path(cls):
        return os.path.join(CONFIG_DIR, "datasets", DATASET_NAME, "defaults.yaml")

    def load(self, config, dataset_type, *args, **kwargs):
        self.dataset_class = MMHFeaturesDataset if config.use_features else MMHImageDataset
        self.dataset = super().load(config, dataset_type, *args, **kwargs)
        return self.dataset

    def build(self, config, *args, **kwargs):
        # MMH is in no MMF zoo: nothing to download, only check the conversion ran.
        data_dir = get_mmf_env(key="data_dir")
        train = get_absolute_path(
            os.path.join(
                data_dir, "datasets", DATASET_NAME, "defaults", "annotations", "train.jsonl"
            )
        )
        if not PathManager.exists(train):
            raise FileNotFoundError(
                f"{train} not found: convert MMHS150K first with `pekit data mmh SRC` "
                "(with the same MMF data dir)"
            )
        super().build(config, *args, **kwargs)

    def update_registry_for_model(self, config):
        if hasattr(self.dataset, "text_processor") and hasattr(
            self.dataset.text_processor, "get_vocab_size"
        ):
            registry.register(
                self.dataset_name + "_text_vocab_size",
                self.dataset.text_processor.get_vocab_size(),
            )
        registry.register(self.dataset_name + "_num_final_outputs", 2)
