"""Storage of entities behind one Protocol, with SQLite and PostgreSQL backends."""
