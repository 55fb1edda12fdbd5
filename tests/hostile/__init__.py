"""Hostile peers for the tests, the fuzz corpus and the benchmarks: a misbehaving RDP server (real
until the stage it attacks) and hostile clients of the emulated host."""
