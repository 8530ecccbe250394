"""`python -m lamplighter` is the `lamplighter` command."""

from lamplighter.cli.main import main

main()
