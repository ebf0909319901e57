"""Sizes and seeds shared by the synthetic-world tests and their fixtures (a uniquely named module:
``conftest`` is ambiguous when several test folders have one)."""

SIZE = (160, 120)
DATASET_SEED = 11
DATASET_IMAGES = 5
DATASET_SPLITS = ("train", "val")
TRAJECTORY_SEED = 5
TRAJECTORY_FRAMES = 12
