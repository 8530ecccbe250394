"""Lamplighter: turns the events that matter (911, 912, someone at the door) into a lamp's colour."""
