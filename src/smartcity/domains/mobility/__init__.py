"""Mobility: traffic, transit, and shared parking with payment."""
