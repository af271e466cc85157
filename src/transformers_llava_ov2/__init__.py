"""LLaVA-OneVision-2 for Hugging Face transformers, with codec-stream video tokenization."""

__version__ = "0.1.0"
