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
        _build_models_when_used()
        from lamplighter.cli.main import main as command_line
    finally:
        gc.freeze()
        gc.enable()
    command_line()


def _build_models_when_used() -> None:
    """Every pydantic model builds its validator at its first use instead of at import.

    `defer_build` is pydantic's own setting; set on BaseModel's configuration, which every model
    inherits, it holds for the models of every library. Start-up imports about 70 models and uses
    a few: FastAPI's OpenAPI models alone took about 100 ms of a 570 ms start (bench/footprint.py),
    and only /api/openapi.json uses them. The configuration's models are still built at start,
    when the file is validated, so a wrong file is refused at once as before.
    """
    from pydantic import BaseModel

    BaseModel.model_config["defer_build"] = True


if __name__ == "__main__":
    main()
