"""Datasets: HMD laid out for MMF, MMHS150K converted to MMF's `mmh` dataset."""

from .paths import dataset_dir, mmf_data_dir, plugin_dir

__all__ = ["dataset_dir", "mmf_data_dir", "plugin_dir"]
