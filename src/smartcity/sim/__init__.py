"""The Changdong district model and its seed data."""
