"""pekit: reproduction kit for PE fine-tuning of VisualBERT/ViLBERT on hateful memes (MMF)."""

__version__ = "0.1.0"
