"""Adapters that run the edge core on a platform (the Cloudflare Worker, the local edge server):
each implements `edge.transport`'s interface over the platform's I/O and serves `edge.surface`."""
