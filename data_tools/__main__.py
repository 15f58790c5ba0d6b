"""`python -m data_tools` runs the data-tools CLI."""

from .cli import main

raise SystemExit(main())
