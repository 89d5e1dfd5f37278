"""Every command group is registered by name: none can drop out because its module failed to import."""

from __future__ import annotations

import typer

from dsx import cli

cli._register_commands()


def test_the_cli_lists_every_command_group():
    top = typer.main.get_command(cli.app)
    assert {"plan", "stacks", "render"} <= set(top.commands)
    assert {"solve", "sweep", "compare", "plot", "value-of-information", "diagnose"} <= set(
        top.commands["plan"].commands
    )
