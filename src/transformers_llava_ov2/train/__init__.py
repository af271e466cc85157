"""Fine-tuning LLaVA-OneVision-2 with the Hugging Face ``Trainer``: stages as data, mixed image / frames / codec
data with official labels, exact packing, LoRA and multi-process runs.

Modules (one job each): :mod:`.stage` (``StageConfig`` and presets), :mod:`.records` (record formats),
:mod:`.encode` (one record → inputs and labels), :mod:`.dataset` (lazy dataset, bad records counted),
:mod:`.sampler` (modality mix, length grouping), :mod:`.collator` (padding, exact packing),
:mod:`.record_collator` (raw records → inputs, for ``trl.SFTTrainer``), :mod:`.modules` (freezing and
parameter groups), :mod:`.trainer` (``LlavaOnevision2Trainer``), :mod:`.lora` (peft adapters,
merge-and-save), :mod:`.run` (a stage end to end, chained stages), :mod:`.demo` (tiny generated data and
checkpoint). See ``docs/training.md``.
"""
