"""The ``cnnreg`` command line: a thin Typer app over the library.

Each command parses its options, calls a library function and renders the result with Rich.
User mistakes (:class:`cnnreg.errors.CnnregError`, bad options) print one line on stderr and
exit with status 2; nothing here imports keras unless a command needs a model.
"""

from __future__ import annotations

import sys

import typer

from cnnreg.errors import CnnregError
from cnnreg.version import __version__

__all__ = ["main", "make_app"]

EPILOG = "Components are named NAME, NAME=VALUE or NAME:KEY=VALUE,... (see docs/spec-grammar.md)."


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cnnreg {__version__}")
        raise typer.Exit()


def make_app(*, with_plugins: bool = True) -> typer.Typer:
    """The Typer app with the core commands and every plugin's commands."""
    app = typer.Typer(
        name="cnnreg",
        help="Config-free plugin framework and model registry for convolutional networks.\n\n"
        "Example: cnnreg list architectures",
        epilog=EPILOG,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )

    @app.callback()
    def _root(
        version: bool = typer.Option(
            False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ) -> None:
        """Config-free plugin framework and model registry for convolutional networks."""

    from cnnreg.cli import analysis, attack, components, data, diagnose, export, lr_find, plugin, sweep, training, zoo

    components.register(app)
    training.register(app)
    lr_find.register(app)
    attack.register(app)
    analysis.register(app)
    diagnose.register(app)
    plugin.register(app)
    data.register(app)
    zoo.register(app)
    export.register(app)
    sweep.register(app)
    if with_plugins:
        from cnnreg.plugins import get_host

        get_host().register_commands(app)
    return app


def _shows_help(command, args: list[str]) -> bool:
    """Whether these arguments print help: --help or -h anywhere, or a group named without one of
    its commands (``cnnreg``, ``cnnreg data``)."""
    import click

    if not args or "--help" in args or "-h" in args:
        return True
    group = command
    for word in args:
        if not isinstance(group, click.Group):
            return False
        group = group.commands.get(word)
    return isinstance(group, click.Group)


def _report_plugin_problem(line: str) -> None:
    """Print a problem the plugin host found (a plugin that failed, an unreachable zoo)."""
    from cnnreg.cli.render import warn

    warn(line)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``cnnreg`` console script."""
    import os

    home_note = _usable_home()  # before anything imports keras or matplotlib
    # TensorFlow's C++ start-up chatter is not for our users; their own setting wins.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    import click

    from cnnreg.backends import install_import_check, lean_imports, uninstall_import_check
    from cnnreg.plugins import set_reporter

    if home_note:
        from cnnreg.cli.render import warn

        warn(home_note)
    set_reporter(_report_plugin_problem)
    install_import_check()  # a bad KERAS_BACKEND is our one line wherever keras gets imported
    lean_imports()  # this process runs our commands: keras without what only it would import
    args = sys.argv[1:] if argv is None else argv
    global _READ_ONLY
    _READ_ONLY = argv is None and args[:1] in (["list"], ["show"])
    if _READ_ONLY:
        # a listing allocates and keeps (a zoo of 100,000 entries is millions of objects) and the
        # process ends after it: the cycle collector would walk them all again and again
        import gc

        gc.disable()
    try:
        command = typer.main.get_command(make_app())
        if _shows_help(command, args):  # fitting every command's help costs 35 ms: only for help
            from cnnreg.cli.helptext import fit_help, help_width, lean_help_imports

            lean_help_imports()
            fit_help(command, help_width())
            _READ_ONLY = argv is None
        command.main(args=args, prog_name="cnnreg", standalone_mode=False)
        if _READ_ONLY:
            _exit_now(0)
    except CnnregError as exc:
        _fail(str(exc), exc.exit_code)
    except click.exceptions.NoArgsIsHelpError:
        # a bare `cnnreg` (or `cnnreg data`): typer has printed the help already; that is no error
        _exit(0)
    except click.UsageError as exc:
        import re

        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
        # click and typer both add suggestions to an unknown command; keep one
        message = re.sub(r"\s*\(Did you mean one of: [^)]*\)", "", exc.format_message())
        message = re.sub(r"(Did you mean [^?]*\?)(\s*\1)+", r"\1", message)
        _fail(message + hint, 2)
    except click.ClickException as exc:
        _fail(exc.format_message(), exc.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        _fail("interrupted", 130)
    except click.exceptions.Exit as exc:  # --help, typer.Exit
        _exit(exc.exit_code)
    finally:
        uninstall_import_check()  # main() also runs in-process (cnnreg.testing.run_cli)


#: This process runs a command that only reads and prints (``cnnreg list``, ``cnnreg show``, help).
_READ_ONLY = False


def _exit_now(code: int) -> None:
    """End the process of a command that only read and printed (``list``, ``show``) without
    Python freeing every object one by one on the way out: a zoo of 100,000 entries is millions
    of them, a second of freeing memory the process returns anyway.  Output is flushed and the
    ``atexit`` handlers run first."""
    import atexit
    import os

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`cnnreg list | head`): nothing more to say
            pass
    atexit._run_exitfuncs()
    os._exit(code)


def _usable_home() -> str:
    """When ``HOME`` is unset or not a writable folder, point Keras' and matplotlib's caches
    (``KERAS_HOME``, ``MPLCONFIGDIR``, unless set) at a temporary folder, removed at exit;
    return the warning to print, or "" when nothing was needed.  Without this they create
    ``~/.keras`` and ``~/.config/matplotlib`` under a path that does not exist."""
    import atexit
    import os
    import shutil
    import tempfile

    home = os.environ.get("HOME")
    if home and os.path.isdir(home) and os.access(home, os.W_OK | os.X_OK):
        return ""
    unset = [name for name in ("KERAS_HOME", "MPLCONFIGDIR") if not os.environ.get(name)]
    if not unset:
        return ""
    folder = tempfile.mkdtemp(prefix="cnnreg-home-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    for name in unset:
        os.environ[name] = folder
    problem = "HOME is not set" if not home else f"HOME ({home}) is not a writable folder"
    return (f"{problem}: {' and '.join(unset)} point to the temporary folder {folder} for this command "
            "(set HOME, or them, to keep Keras' and matplotlib's caches)")


def _fail(message: str, code: int) -> None:
    from cnnreg.cli.render import error

    error(message)
    _exit(code)


def _exit(code: int) -> None:
    if _READ_ONLY:
        _exit_now(code)
    sys.exit(code)
