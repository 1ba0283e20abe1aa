"""Commands that belong to no single stage: ``config show`` and ``demo``."""

from __future__ import annotations

import argparse
import json


def _config_show(args: argparse.Namespace) -> int:
    cfg = args.cfg
    shown = cfg.to_dict(redact=True)
    shown["lake"]["url"] = args.lake
    print(f"# source: {cfg.source or 'embedded defaults'}")
    if cfg.overrides:
        print(f"# environment overrides: {', '.join(cfg.overrides)}")
    print(json.dumps(shown, indent=2, default=str))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from infra.app.demo import DemoSettings, run_demo

    settings = DemoSettings(
        lake_url=args.lake,
        report_dir=args.report,
        quick=args.quick,
    )
    run_demo(
        settings,
        storage_options=args.storage_options,
        ray_address=str(args.cfg.ray.get("address") or "") or None,
    )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``config`` and ``demo`` to the top-level command list."""
    config = subparsers.add_parser("config", help="show the effective configuration")
    config_sub = config.add_subparsers(dest="config_command", metavar="ACTION")
    show = config_sub.add_parser("show", help="print the effective config (secrets hidden)")
    show.set_defaults(func=_config_show)

    demo = subparsers.add_parser(
        "demo",
        help="run the main job end to end on the embedded default and write demo-report/",
    )
    demo.add_argument("--report", default="demo-report", help="report folder")
    demo.add_argument(
        "--quick", action="store_true", help="smallest settings (for tests): fewer materials"
    )
    demo.set_defaults(func=_demo)
