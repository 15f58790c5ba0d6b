"""`python -m cond_lsgan` runs the `cond-lsgan` command."""

from .cli import main

raise SystemExit(main())
