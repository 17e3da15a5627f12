"""Spatial core: database, ORM models, coordinate systems and geometry services."""
