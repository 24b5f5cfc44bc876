"""``python -m shelfedge`` is the ``shelfedge`` command."""

import sys

from shelfedge.cli import main

sys.exit(main())
