"""Geocoding support (GB/T 30428.3): trigram indexes on names for text search (pg_trgm).

The geocoder itself resolves names in memory (``geocoder/``); these GiST trigram indexes
serve ad-hoc ``%``/``<->`` text search in SQL (and the naive baseline in bench/geocode.py).
"""

from __future__ import annotations

from sqlalchemy import Index

from spatial.models.places import Address, Poi

ADDRESS_TRGM = Index(
    "ix_addresses_standard_address_trgm",
    Address.standard_address,
    postgresql_using="gist",
    postgresql_ops={"standard_address": "gist_trgm_ops"},
)
POI_NAME_TRGM = Index(
    "ix_pois_name_trgm",
    Poi.name,
    postgresql_using="gist",
    postgresql_ops={"name": "gist_trgm_ops"},
)
