"""Training data: readers for the real formats (COCO panoptic/instances/captions, Karpathy splits,
RefCOCO-g, FIND-Bench), the joined per-image view, prompts drawn from ground truth and the
multi-task mixture. Readers raise :class:`training.data_engine.errors.InputFormatError`, which names
the file, the record and the reason."""
