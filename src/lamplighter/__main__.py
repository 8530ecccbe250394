"""`python -m lamplighter` is the `lamplighter` command; `main` is also the console script's entry point."""

import gc


def main() -> None:
    """Load the CLI with the cyclic garbage collector paused, freeze what it loaded, then run the command.

    Loading allocates a few hundred thousand objects that live as long as the process and almost
    no garbage, yet the collector would sweep them again and again while they pile up: a
    noticeable part of the daemon's start-up. Frozen, they are left out of every later collection.
    """
    gc.disable()
    try:
        from lamplighter.cli.main import main as command_line
    finally:
        gc.freeze()
        gc.enable()
    command_line()


if __name__ == "__main__":
    main()
