"""Scenario files (faults, remediations, labs): loading, schema checks and the catalog."""
