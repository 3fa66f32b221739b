"""Shared CLI plumbing: the config file and the settings/inventory it points to."""

from __future__ import annotations

import argparse
from pathlib import Path

from devices.inventory import Inventory
from gateway.errors import ConfigError
from protocols.config import load_config

from .settings import Settings, settings_from_config

DEFAULT_CONFIG = Path("livinglab.toml")


def add_config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, default=None, metavar="FILE",
                   help=f"TOML config file (default: ./{DEFAULT_CONFIG} when present)")


def load_settings(args: argparse.Namespace) -> Settings:
    path: Path | None = args.config
    if path is None:
        if not DEFAULT_CONFIG.exists():
            raise ConfigError("no config file given (pass --config FILE)")
        path = DEFAULT_CONFIG
    return settings_from_config(load_config(path))


def open_inventory(settings: Settings) -> Inventory:
    return Inventory.in_data_dir(settings.data_dir)
