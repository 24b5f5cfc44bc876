"""The Cloudflare Python Worker under real workerd, offline: Pyodide dev bundle and build."""
