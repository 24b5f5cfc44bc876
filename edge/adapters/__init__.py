"""Adapters that run the edge core on a platform: the Cloudflare Worker, the local edge server."""
