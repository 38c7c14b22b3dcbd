"""Changdong integrated smart-city platform."""

__version__ = "0.1.0"
