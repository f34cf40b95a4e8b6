"""``python -m planning`` is the same as the ``pharmacy-plan`` command."""

from planning.cli import main

raise SystemExit(main())
