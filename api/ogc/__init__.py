"""OGC API – Features at ``/ogc``: pygeoapi configured from the layer registry, plus a fast path."""
