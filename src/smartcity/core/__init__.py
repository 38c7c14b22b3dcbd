"""Shared vocabulary: entity model, errors, clock."""
