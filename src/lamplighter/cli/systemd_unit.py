"""`lamplighter systemd-unit`: print the systemd unit with this installation's `lamplighter` in ExecStart.

The unit itself is cli/lamplighter.service (also at packaging/systemd/); it names
/usr/local/bin/lamplighter, where `pipx install --global` puts it. This command puts in the
path of the program that runs it instead, so a virtualenv or a pipx install anywhere works:

    lamplighter systemd-unit | sudo tee /etc/systemd/system/lamplighter.service
"""

from __future__ import annotations

import sys
from importlib.resources import files
from pathlib import Path

import click

PACKAGED_EXECUTABLE = "/usr/local/bin/lamplighter"
HOME_DIRECTORIES = (Path("/home"), Path("/root"), Path("/run/user"))


def this_executable() -> Path:
    """The `lamplighter` script of this installation: beside the virtualenv's python (symlinks kept)."""
    return Path(sys.executable).absolute().parent / "lamplighter"


def unit_text(executable: Path) -> str:
    """The packaged unit with `executable` in ExecStart; ProtectHome=read-only if it lives under /home."""
    text = files("lamplighter.cli").joinpath("lamplighter.service").read_text(encoding="utf-8")
    quoted = f'"{executable}"' if " " in str(executable) else str(executable)
    text = text.replace(f"ExecStart={PACKAGED_EXECUTABLE} ", f"ExecStart={quoted} ")
    if any(executable.is_relative_to(home) for home in HOME_DIRECTORIES):
        text = text.replace("ProtectHome=yes", "# installed under a home directory\nProtectHome=read-only")
    return text


@click.command("systemd-unit", short_help="Print a systemd unit for this installation.")
@click.option("--exec", "executable", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              default=None, help="The lamplighter program ExecStart names (default: this one).")
def systemd_unit(executable: Path | None) -> None:
    """Print a systemd unit for this installation (Type=notify, watchdog, hardened). Install it with:

    \b
    lamplighter systemd-unit | sudo tee /etc/systemd/system/lamplighter.service
    sudo systemctl daemon-reload && sudo systemctl enable --now lamplighter
    """
    chosen = (executable or this_executable()).absolute()
    if not chosen.is_file():
        raise click.ClickException(f"{chosen} does not exist; name the lamplighter program with --exec PATH")
    click.echo(unit_text(chosen), nl=False)
