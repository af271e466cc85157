"""A content-addressed store of tokenized videos and the dataset-scale precompute that fills it.

* :mod:`.keys` — what is hashed: file bytes, resolved front-end config, format version;
* :mod:`.config` — :class:`FramesConfig` and the canonical form of either back end's config;
* :mod:`.entry` — atomic entry write (temp folder + rename + done marker) and checked read;
* :mod:`.images` / :mod:`.serialize` — lossless (PNG/NPY) or JPEG images, bit-exact typed results;
* :mod:`.video_store` — :class:`VideoStore`, the public lookup API;
* :mod:`.dataset` / :mod:`.precompute` — walking a dataset and filling the store (local pool or Ray);
* :mod:`.official` — export to / import from the official pipeline's layouts.

See ``docs/store.md``.
"""

from .config import FramesConfig, canonical_config, resolve_config
from .entry import CorruptEntryError, StoreError
from .keys import FORMAT_VERSION, config_digest, entry_key, file_digest
from .video_store import StoreWarning, VideoStore, compute_result

__all__ = [
    "FORMAT_VERSION",
    "CorruptEntryError",
    "FramesConfig",
    "StoreError",
    "StoreWarning",
    "VideoStore",
    "canonical_config",
    "compute_result",
    "config_digest",
    "entry_key",
    "file_digest",
    "resolve_config",
]
