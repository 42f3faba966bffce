"""Allow ``python -m healthy_homes``."""

from healthy_homes.cli import main

raise SystemExit(main())
