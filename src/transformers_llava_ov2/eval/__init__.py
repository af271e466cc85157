"""Evaluation tools.

* :mod:`.jumpscore` — the official JumpScore parsing and metric (pure functions) and a strict parser;
* :mod:`.annotations` — the dataset's annotation format (read a local folder, write one);
* :mod:`.make_bench` — offline JumpScore-like folders from :mod:`..video.synthetic_events` clips;
* :mod:`.runner` — batched greedy generation and the resumable predictions file;
* :mod:`.results` — scores JSON, the printed table, ``eval_results.json``;
* :mod:`.lmms_eval_plugin` — the lmms-eval model ``llava_ov2_hf`` (imported by lmms-eval only);
* :mod:`.card` — Hub-ready model cards.

Tools import the engines (``video/``, ``codec/``) and the root model files, never the other way.
"""
