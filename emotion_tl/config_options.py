"""The command line's view of the Config: one option per field, with its help and default from
config.py, and the Config a parsed command line asks for."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Iterable
from typing import Any, get_type_hints

from emotion_tl.config import SEED_RECIPE_SETTINGS, Config


def add_config_arguments(
    parser: argparse.ArgumentParser, names: Iterable[str] = (), *, several: Iterable[str] = ()
) -> None:
    """Add one option per Config field (`--data_dir`, `--epochs`, ...), or per field in `names`;
    the fields in `several` take one or more values (a list; each run takes one of them)."""
    hints = get_type_hints(Config)
    wanted, several = set(names), set(several)
    for f in dataclasses.fields(Config):
        if wanted and f.name not in wanted:
            continue
        help_text = f.metadata.get("help", "")
        kind = hints[f.name]
        if kind is bool:
            # Default True -> only the switch that turns it off is useful, and vice versa.
            flag = f"--no_{f.name}" if f.default else f"--{f.name}"
            action = "store_false" if f.default else "store_true"
            parser.add_argument(flag, dest=f.name, action=action, help=help_text)
            continue
        shown = "" if f.default is None else " (default: %(default)s)"
        kwargs: dict[str, Any] = {"default": f.default, "help": help_text + shown}
        if "choices" in f.metadata:
            kwargs["choices"] = f.metadata["choices"]
        if f.name == "categories":
            kwargs.update(nargs="+", metavar="CATEGORY", default=list(f.default))
        elif f.name in several:
            kwargs.update(nargs="+", type=_scalar_type(kind), default=[f.default])
        else:
            kwargs["type"] = _scalar_type(kind)
        parser.add_argument(f"--{f.name}", **kwargs)
    if not wanted:  # the whole Config: the seed's recipe is one option away
        settings = " ".join(f"--{k} {v}" for k, v in SEED_RECIPE_SETTINGS.items())
        parser.add_argument(
            "--seed_recipe",
            action="store_true",
            help=f"the seed's plain recipe: {settings} (options given with it still win)",
        )


def _scalar_type(kind: Any) -> type:
    for candidate in (int, float, str):
        if kind is candidate or kind == candidate | None:
            return candidate
    raise TypeError(f"no command-line type for {kind}")


def config_from_args(args: argparse.Namespace, **fixed: Any) -> Config:
    """The Config a parsed command line asks for (options it lacks keep their defaults)."""
    names = {f.name for f in dataclasses.fields(Config)}
    return Config(**{k: v for k, v in vars(args).items() if k in names} | fixed)
