"""Benchmarks: scripts that print tables of AWS calls, CPU seconds and memory."""
