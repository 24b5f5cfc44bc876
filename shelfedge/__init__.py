"""The entry point: the ``shelfedge`` command line (`cli`, `invalidation_commands`), the dev
supervisor (`devstack`) and the local stack it starts (`localstack`: Redis, the broker).

It is the composition root: it imports every other package, and nothing imports it.
"""

from __future__ import annotations
