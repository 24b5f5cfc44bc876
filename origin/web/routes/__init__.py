"""HTTP endpoints of the origin, one module per concern."""
