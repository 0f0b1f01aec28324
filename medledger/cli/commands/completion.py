"""``medledger completion``: the shell completion script (click's), to source from a shell's start file."""

from __future__ import annotations

import click

SHELLS = ("bash", "zsh", "fish")


@click.command("completion")
@click.argument("shell", type=click.Choice(SHELLS), default="bash")
def completion(shell: str) -> None:
    """Print the completion script for SHELL (bash, zsh or fish). Load it from your shell's start file:

    \b
        bash  ~/.bashrc                    eval "$(medledger completion bash)"
        zsh   ~/.zshrc                     eval "$(medledger completion zsh)"
        fish  ~/.config/fish/config.fish   medledger completion fish | source
    """
    from click.shell_completion import get_completion_class

    from .. import cli

    completer = get_completion_class(shell)
    assert completer is not None  # every shell offered is one click knows
    click.echo(completer(cli, {}, "medledger", "_MEDLEDGER_COMPLETE").source())


COMMANDS = [completion]
