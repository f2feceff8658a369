"""Observe: read AWS (never write) into ObservedState for the pass (DESIGN.md §7)."""
