"""``python -m kit``: the same command line as the ``kit`` entry point."""

from kit.cli.main import main

raise SystemExit(main())
