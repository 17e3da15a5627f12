"""Geocoding (GB/T 30428.3): standard addresses over roads, compounds, plates and POIs."""
