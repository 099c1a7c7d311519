"""Run the command line as `python -m exporter`."""

from exporter.cli import main

raise SystemExit(main())
