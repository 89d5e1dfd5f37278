"""Entry point of the `dsx` console script.

User mistakes (`UserError`) are printed as one clear message and a non-zero exit code, never as a
traceback. Command groups live in `dsx.commands.*`; each is imported and registered here by name.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from dsx.commands import plan_insight, plan_solve, provision
from planner.errors import UserError

app = typer.Typer(
    name="dsx",
    help="Plan and provision DSX AI factories.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
plan_app = typer.Typer(help="Solve, sweep and compare capacity plans.", no_args_is_help=True)
app.add_typer(plan_app, name="plan")

err_console = Console(stderr=True)


def _register_commands() -> None:
    """Every command group, by name: a command module that fails to import fails the CLI."""
    plan_solve.register(app, plan_app)
    plan_insight.register(app, plan_app)
    provision.register(app, plan_app)


def main() -> None:
    _register_commands()
    try:
        app(standalone_mode=False)
    except UserError as error:
        err_console.print(f"[bold red]error:[/] {error.render()}", highlight=False)
        sys.exit(error.exit_code)
    except typer.Abort:
        sys.exit(130)
    except Exception as error:
        import click

        if isinstance(error, click.ClickException):
            error.show()
            sys.exit(error.exit_code)
        raise


if __name__ == "__main__":
    main()
