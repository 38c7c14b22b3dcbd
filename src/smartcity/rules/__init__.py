"""The convergence-event engine: rules across services, windows, patterns, actions, backtests."""
