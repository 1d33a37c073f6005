"""`python -m orgalerts` runs the CLI."""

from orgalerts.cli import main

raise SystemExit(main())
