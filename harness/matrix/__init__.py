"""The validated fix matrix: one cell per (fault, remediation), each run in a fresh lab."""
