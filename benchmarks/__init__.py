"""Benchmarks: run by hand (python benchmarks/<name>.py), never by the test suite."""
