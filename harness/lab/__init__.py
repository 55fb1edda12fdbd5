"""Labs: a topology file, the Windows nodes built from it, and backends that run it."""
