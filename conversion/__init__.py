"""Checkpoint conversion scripts (thin wrappers of ``llava-ov2 convert ...`` / ``llava-ov2 check``).

``megatron_to_hf``, ``hf_to_megatron``, ``merge_stage0``, ``release_to_native``, ``check``; each runs as a
file (``python conversion/megatron_to_hf.py``) or a module (``python -m conversion.megatron_to_hf``).
"""
