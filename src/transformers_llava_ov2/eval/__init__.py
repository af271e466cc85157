"""Evaluation tools: the JumpScore scorer (:mod:`.jumpscore`), benchmark annotations (:mod:`.annotations`),
the evaluation runner (:mod:`.runner`), the lmms-eval plugin (:mod:`.lmms_eval_plugin`) and model cards
(:mod:`.card`).

Tools import the engines (``video/``, ``codec/``) and the root model files, never the other way.
"""
