"""Entry point of ``python -m training.data_engine`` (see :mod:`training.data_engine.cli`)."""

from .cli import main

raise SystemExit(main())
