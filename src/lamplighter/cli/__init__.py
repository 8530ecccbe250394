"""The `lamplighter` command: run the daemon, talk to it, and check or write a configuration."""
