"""Glue for the notebooks: their parameters become a Config, and the optional training widgets."""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any

from emotion_tl.config import Config, config_from_dict
from emotion_tl.model.backbones import resolve_config
from emotion_tl.notebook.training_panel import TrainingPanel
from emotion_tl.notebook.widget_runs import Find, Train, find_live, train_live

# Types a papermill parameter can have (papermill writes plain Python literals).
LITERAL_TYPES = (type(None), bool, int, float, str, list, tuple, dict)
# Set in the notebook's namespace by the first successful config_from_parameters call.
NAMES_AT_FIRST_CONFIG = "_emotion_tl_names_at_first_config"


class ParameterError(ValueError):
    """A notebook parameter is unknown or has the wrong shape; the message says what to change."""


def _hidden_names() -> set[str]:
    """Names IPython puts in a notebook's namespace itself (In, Out, exit, ...)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return set()
    shell = get_ipython()
    return set(shell.user_ns_hidden) if shell is not None else set()


def collect_parameters(namespace: dict[str, Any]) -> dict[str, Any]:
    """The plain-literal globals of `namespace`: the parameters cell plus papermill's injected cell.

    Modules, functions and other objects are not parameters; nor are names starting with `_`
    or those IPython defines itself.
    """
    hidden = _hidden_names()
    return {
        name: value
        for name, value in namespace.items()
        if not name.startswith("_") and name not in hidden and isinstance(value, LITERAL_TYPES)
    }


def config_from_parameters(
    namespace: dict[str, Any], *, own: tuple[str, ...] = (), **fixed: Any
) -> Config:
    """Build the Config from a notebook's parameters (`globals()`); unknown names fail loudly.

    Call it in the cell right after the parameters cell, before defining anything else. Run
    again later in the same kernel, it ignores variables that cells after it have defined.
    Papermill only warns about a parameter the notebook does not declare and then injects it
    anyway; here any such name that is not a Config field (for example `epoch` for `epochs`)
    stops the notebook with a message naming the valid fields. `fixed` sets fields the notebook
    decides itself, such as `approach="frozen"`; `own` names parameters that are the notebook's
    own and no Config field (05's `sources`). The Config returned names the source model's
    entry and its input side where the parameters leave them to it.
    """
    values = {k: v for k, v in collect_parameters(namespace).items() if k not in own}
    fields = [f.name for f in dataclasses.fields(Config)]
    known_before = namespace.get(NAMES_AT_FIRST_CONFIG)
    if known_before is not None:
        # Run again in a live kernel: later cells' variables are not parameters.
        values = {k: v for k, v in values.items() if k in known_before or k in fields}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, fields, n=1)
            hints.append(f"'{name}' (did you mean '{close[0]}'?)" if close else f"'{name}'")
        raise ParameterError(
            f"Unknown notebook parameter(s): {', '.join(hints)}. Valid names: {', '.join(fields)}. "
            "If you defined these names yourself after the parameters cell, restart the kernel "
            "and run the notebook from the top."
        )
    if isinstance(values.get("categories"), str):
        raise ParameterError(
            f"categories={values['categories']!r} is a string; give a list such as "
            "['confused', 'neutral']. With papermill, pass lists in YAML (-y or -f params.yaml): "
            "-p turns a list into a string."
        )
    # Concrete for the cells that follow: the source's own name and input side where unset.
    cfg = resolve_config(config_from_dict(values | fixed))
    namespace.setdefault(NAMES_AT_FIRST_CONFIG, set(namespace))
    return cfg


def make_training_widgets(
    cfg: Config, approach: str, train: Train = train_live, find: Find = find_live
) -> TrainingPanel:
    """The training widget for `approach` (notebook/training_panel.py): sliders and lists for
    epochs, categories, images per category, batch size and learning rate; the learning-rate
    finder with a button that takes its suggestion; Train, Stop and Resume; curves redrawn after
    every epoch; a table of the runs so far.

    Nothing trains until Train is clicked, so the cell displays but does nothing when the
    notebook runs headless (papermill, nbval). A click trains into its own folder under
    `checkpoint_dir/widget_runs/`, leaving the notebook's own outputs alone.
    """
    return TrainingPanel(cfg, approach, train, find)
