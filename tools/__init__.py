"""Developer tooling for shelfedge: build and run helpers that are not part of the product."""
