"""``python -m sentia_core`` is the ``sentia`` command."""

from .cli import main

raise SystemExit(main())
