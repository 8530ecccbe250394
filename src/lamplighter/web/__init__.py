"""The HTTP face: the JSON API under /api, the lamp pages under /lamp, health and metrics."""
