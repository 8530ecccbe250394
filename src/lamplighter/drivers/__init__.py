"""Drivers: one protocol each. They apply a desired state and read it back; they never decide."""
