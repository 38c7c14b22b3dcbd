"""Changdong integrated smart-city platform."""

from smartcity.native import use_sources_if_stale

__version__ = "0.1.0"

use_sources_if_stale()
