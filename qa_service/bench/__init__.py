"""Benchmarks: scripts that print figures and write JSON, each measured against a baseline in the same run."""
