"""Entry point of the `dsx` console script.

Every way a command can go wrong for the user ends here as one clear message and an exit code,
never a traceback: a `UserError` (a bad file, field or value: exit 2, or 3 when there is no
plan), a usage error caught by the command-line parser (a mistyped command, a missing or unknown
option, a value out of range: exit 2), or a file the system cannot read or write (exit 2). With
`--json` the error is printed as JSON instead, for scripts; errors always go to stderr, so stdout
holds only a command's result (`diagnose --json` prints its diagnosis and then fails with exit 3). Error text is printed
literally (never read as rich markup), so `sites[batam]` keeps its brackets.
Command groups live in `dsx.commands.*`; each is imported and registered here by name.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

import click
import typer
import typer._click.exceptions as typer_click_exceptions
from rich.console import Console
from rich.markup import escape

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

USAGE_ERRORS = (click.exceptions.UsageError, typer_click_exceptions.UsageError)
"""typer parses with its own bundled copy of click, so both families of usage errors are caught."""
NO_ARGS = (click.exceptions.NoArgsIsHelpError, typer_click_exceptions.NoArgsIsHelpError)
ABORTS = (click.exceptions.Abort, typer.Abort)
HELP_WIDTH_IN_A_PIPE = 130
"""Help printed into a pipe or file is this wide, so no option name is cut short."""

_registered = False


def _register_commands() -> None:
    global _registered
    if _registered:
        return
    _registered = True
    plan_solve.register(app, plan_app)
    plan_insight.register(app, plan_app)
    provision.register(app, plan_app)


def report_error(message: str, details: Sequence[str], exit_code: int, *, as_json: bool) -> int:
    """Print one error on stderr (JSON with `--json`, else plain text); return the exit code."""
    if as_json:
        payload = {"error": {"message": message, "details": list(details), "exit_code": exit_code}}
        sys.stderr.write(json.dumps(payload, indent=1) + "\n")
        return exit_code
    text = "\n".join([message, *(f"  - {d}" for d in details)])
    Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {escape(text)}", highlight=False)
    return exit_code


def _command_of(error: Exception) -> str:
    ctx = getattr(error, "ctx", None)
    return ctx.command_path if ctx is not None else "dsx"


def _help_fits_a_pipe() -> None:
    import typer.rich_utils

    if typer.rich_utils.MAX_WIDTH is None and not sys.stdout.isatty():
        typer.rich_utils.MAX_WIDTH = HELP_WIDTH_IN_A_PIPE


def run(args: Sequence[str] | None = None) -> int:
    """Run one `dsx` command line in-process and return its exit code; prints, never raises for a
    user mistake. `main` is this plus `sys.exit`; tests call it directly."""
    _register_commands()
    argv = list(sys.argv[1:] if args is None else args)
    as_json = "--json" in argv
    _help_fits_a_pipe()
    try:
        code = app(args=argv, prog_name="dsx", standalone_mode=False)
    except UserError as error:
        return report_error(error.message, error.details, error.exit_code, as_json=as_json)
    except NO_ARGS as error:
        help_text = error.ctx.get_help() if error.ctx is not None else ""  # rich help prints itself
        if help_text:
            sys.stderr.write(help_text + "\n")
        return 2
    except USAGE_ERRORS as error:
        command = _command_of(error)
        return report_error(
            f"{command}: {error.format_message()}",
            [f"Fix: see `{command} --help` for its arguments, options and their ranges"],
            2,
            as_json=as_json,
        )
    except ABORTS:
        return 130
    except (click.exceptions.ClickException, typer_click_exceptions.ClickException) as error:
        return report_error(error.format_message(), [], error.exit_code or 1, as_json=as_json)
    except BrokenPipeError:  # `dsx plan show PLAN | head`: the reader has all it wanted
        return 0
    except MemoryError:
        # Past the check before each build (planner.model.size), whose need is a floor.
        return report_error(
            "ran out of memory",
            [
                "Fix: fewer scenarios (`dsx plan reduce`), sites, tenants or quarters, or a machine with "
                "more memory (the check before each build counts only the least a model needs)"
            ],
            3,
            as_json=as_json,
        )
    except OSError as error:
        where = error.filename or "a file"
        return report_error(
            f"{where}: {error.strerror or error}",
            ["Fix: check that the path exists, is of the right kind (file or directory) and is writable"],
            2,
            as_json=as_json,
        )
    return code if isinstance(code, int) else 0


def main() -> None:
    sys.exit(run())


if __name__ == "__main__":
    main()
