"""The integrated operations center (통합상황관제): incidents, SOPs, escalation, video access."""
