"""``python -m origin`` is the ``shelfedge`` command."""

import sys

from origin.cli import main

sys.exit(main())
