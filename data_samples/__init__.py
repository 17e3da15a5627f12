"""Deterministic Dafeng sample data: reference tables, generators and the COPY loader."""
