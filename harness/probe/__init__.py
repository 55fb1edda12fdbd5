"""The probe: an RDP client that records every stage and computes the codes real clients show."""
