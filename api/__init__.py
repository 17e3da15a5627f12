"""HTTP API (FastAPI), routers and the ``cityops`` command line."""
