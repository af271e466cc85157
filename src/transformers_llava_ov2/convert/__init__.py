"""Checkpoint conversion: Megatron-Core ⇄ HF (legacy torch and torch_dist), stage-0 merge, release → native,
and the folder checker. One job per module:

* :mod:`.megatron_names` — the name map (one :class:`~.megatron_names.Recipe` per Megatron tensor);
* :mod:`.transforms` / :mod:`.recipe_ops` — exact tensor transforms (qkv, fc1, patch, vocab) and their use;
* :mod:`.safetensors_io` — streaming safetensors reader and writer with index;
* :mod:`.megatron_legacy` / :mod:`.torch_dist` / :mod:`.safe_pickle` — Megatron formats without Megatron;
* :mod:`.megatron_to_hf` / :mod:`.hf_to_megatron` / :mod:`.merge` / :mod:`.release` / :mod:`.check` — the jobs;
* :mod:`.checks` / :mod:`.fsutil` / :mod:`.layout` / :mod:`.hf_folder` — shared checks, atomic output, layouts.

Every job streams tensors, never writes into its source, writes into a temporary sibling folder renamed at
the end (nothing is left behind on failure) and fails with a :class:`ConversionError` naming the tensor.
"""

from .checks import ConversionError

__all__ = ["ConversionError"]
