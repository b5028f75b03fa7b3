"""Table layer: schema, store (SQLite/PostgreSQL), tabdump CSV and attribute resolution.

Nothing in this package may import from the layers below it (noderange, plugins, ...).
"""
