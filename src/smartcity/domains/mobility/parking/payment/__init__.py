"""Parking payment: sessions, transit-card and RFID charges, the double-entry ledger, settlement."""
