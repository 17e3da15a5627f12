"""Business layers and modules, each declared as a ``LayerSpec`` in the registry."""
