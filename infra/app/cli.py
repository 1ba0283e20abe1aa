"""The ``ebsdlake`` console script: one entry point for every stage.

Each package contributes its own subcommands through ``<package>.cli.register(subparsers)``;
this module adds the global options, resolves the configuration once, and turns user errors
(``ValueError``/``RuntimeError`` subclasses raised for bad input) into one line on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import sys
from collections.abc import Iterator, Sequence

from infra.config import ConfigError, load_config, register_section

#: Packages whose ``cli.register`` adds stage commands, in the order ``--help`` lists them.
STAGE_MODULES = (
    "ingest.cli",
    "simulate.cli",
    "lake.cli",
    "infra.app.train_cli",
    "infra.app.evaluate_cli",
    "infra.app.bench_cli",
    "infra.app.runs_cli",
    "infra.app.model_cli",
)
EXIT_USER_ERROR = 2


def _register_stage(module_name: str, subparsers: argparse._SubParsersAction) -> object | None:
    """Let one package add its commands; returns what its ``register`` returns."""
    return importlib.import_module(module_name).register(subparsers)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ebsdlake")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "unknown"


def register_config_sections() -> None:
    """Add the stages' config sections (``[simulate]``, ``[train]``), whose defaults live on
    their settings dataclasses, to the configuration schema. Idempotent."""
    from simulate.config_section import config_section_defaults as simulate_section
    from train.config_section import config_section_defaults as train_section

    register_section("simulate", *simulate_section())
    register_section("train", *train_section())


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every stage's subcommands."""
    register_config_sections()
    parser = argparse.ArgumentParser(
        prog="ebsdlake",
        description=(
            "Space-group determination from EBSD patterns: ingest structures, simulate master "
            "patterns into a shared Zarr lake, stream projections into Ray Train, evaluate and "
            "predict."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    _add_global_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    lake_sub = None
    for module_name in STAGE_MODULES:
        result = _register_stage(module_name, sub)
        if module_name == "lake.cli":
            lake_sub = result
    if lake_sub is not None:
        from infra.app import lake_extras

        lake_extras.register(lake_sub)
    from infra.app import commands

    commands.register(sub)
    _global_options_everywhere(parser)
    return parser


def _add_global_options(parser: argparse.ArgumentParser, after_command: bool = False) -> None:
    """``--lake``, ``--config`` and ``-v``; after a command they default to ``SUPPRESS``, so
    a value given before the command is kept unless the option is repeated after it."""
    target: argparse._ActionsContainer = parser
    extra: dict = {}
    if after_command:
        target = parser.add_argument_group("global options (also accepted before the command)")
        extra = {"default": argparse.SUPPRESS}
    target.add_argument(
        "--lake", help="lake URL (local path, s3://bucket/prefix, memory://...)", **extra
    )
    target.add_argument(
        "--config", help="config file (default: $EBSDLAKE_CONFIG or ./ebsdlake.toml)", **extra
    )
    target.add_argument(
        "-v", "--verbose", action="store_true", help="show debug logs and tracebacks", **extra
    )


def _global_options_everywhere(parser: argparse.ArgumentParser) -> None:
    """Add the global options to every (nested) subcommand, so ``ebsdlake lake ls --lake X``
    works as ``ebsdlake --lake X lake ls`` does."""
    seen: set[int] = set()

    def visit(node: argparse.ArgumentParser) -> None:
        for action in node._actions:
            if not isinstance(action, argparse._SubParsersAction):
                continue
            for child in action.choices.values():
                if id(child) not in seen:
                    seen.add(id(child))
                    _add_global_options(child, after_command=True)
                    visit(child)

    visit(parser)


def check_lake_protocol(url: str, where: str) -> None:
    """Raise :class:`ConfigError` when fsspec cannot open ``url``'s protocol(s).

    ``where`` names the setting the URL came from (``--lake``, ``EBSDLAKE_LAKE_URL``...).
    """
    from lake.store import is_local_url

    if is_local_url(url):
        return
    import fsspec

    for part in url.split("::"):
        protocol = part.split("://", 1)[0]
        try:
            fsspec.get_filesystem_class(protocol)
        except ValueError:
            raise ConfigError(
                f"lake URL {url} ({where}): unknown storage protocol {protocol!r} (give a local path, "
                "s3://bucket/prefix, memory://name or another fsspec URL)"
            ) from None
        except ImportError as exc:  # a known protocol whose package is not installed
            raise ConfigError(f"lake URL {url} ({where}): {exc}") from None


def _resolve_common(args: argparse.Namespace) -> None:
    cfg = load_config(args.config)
    args.cfg = cfg
    from lake import canonical_url

    url = args.lake or str(cfg.lake.get("url", "./lake.zarr"))
    check_lake_protocol(url, "--lake" if args.lake else cfg.origin("lake", "url"))
    # absolute, so Ray workers in other working directories see the same lake
    args.lake = canonical_url(url)
    args.storage_options = dict(cfg.lake.get("storage_options", {}) or {})


@contextlib.contextmanager
def _ray_logs(verbose: bool) -> Iterator[None]:
    """Ray's own logs at INFO for this command when ``-v`` is given (``EBSDLAKE_RAY_LOG_LEVEL``),
    restored afterwards, so one verbose call (from Python, or a test) leaves later ones quiet."""
    name = "EBSDLAKE_RAY_LOG_LEVEL"
    before = os.environ.get(name)
    if verbose and before is None:
        os.environ[name] = "INFO"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 0 if args.command is None else EXIT_USER_ERROR
    try:
        with _ray_logs(args.verbose):
            _resolve_common(args)
            return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("ebsdlake: interrupted", file=sys.stderr)
        return 130
    except (ConfigError, ValueError, RuntimeError, FileNotFoundError, PermissionError) as exc:
        if args.verbose:
            raise
        print(f"ebsdlake {args.command}: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
