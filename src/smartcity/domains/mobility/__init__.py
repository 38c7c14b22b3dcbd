"""Mobility: traffic, transit, parking and payment."""
