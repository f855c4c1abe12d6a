"""Helpers for cnnbench's tests and checks (no test framework needed): host-sync counting, synthetic datasets."""
