"""The event bus: facts published by one part of the platform and consumed by others."""
