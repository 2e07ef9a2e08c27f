"""Glue for the notebooks: their parameters become a Config, and the optional training widgets."""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from emotion_tl.config import OUTPUT_PREFIX, Config, config_from_dict
from emotion_tl.data.files import list_categories

# Types a papermill parameter can have (papermill writes plain Python literals).
LITERAL_TYPES = (type(None), bool, int, float, str, list, tuple, dict)
WIDGET_RUNS = "widget_runs"  # sub-folder of checkpoint_dir for runs started from the widgets
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


def config_from_parameters(namespace: dict[str, Any], **fixed: Any) -> Config:
    """Build the Config from a notebook's parameters (`globals()`); unknown names fail loudly.

    Call it in the cell right after the parameters cell, before defining anything else. Run
    again later in the same kernel, it ignores variables that cells after it have defined.
    Papermill only warns about a parameter the notebook does not declare and then injects it
    anyway; here any such name that is not a Config field (for example `epoch` for `epochs`)
    stops the notebook with a message naming the valid fields. `fixed` sets fields the notebook
    decides itself, such as `approach="frozen"`.
    """
    values = collect_parameters(namespace)
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
    cfg = config_from_dict(values | fixed)
    namespace.setdefault(NAMES_AT_FIRST_CONFIG, set(namespace))
    return cfg


def train_and_show(cfg: Config, approach: str) -> Any:
    """Train one approach as the notebooks do and display its curves and confusion matrix."""
    import pandas as pd
    from IPython.display import display

    from emotion_tl.figures.evaluation import plot_confusion_matrix
    from emotion_tl.figures.training import plot_history
    from emotion_tl.training.approach import train_approach
    from emotion_tl.training.run import prepare_run

    data, pretrained = prepare_run(cfg)
    result = train_approach(cfg, approach, data, pretrained, Path(cfg.checkpoint_dir))
    display(plot_history(result.history, OUTPUT_PREFIX[approach]))
    table = pd.read_csv(result.outputs["confusion_csv"], index_col=0)
    display(plot_confusion_matrix(table, f"test accuracy {result.test_acc:.3f}"))
    return result


def make_training_widgets(
    cfg: Config, approach: str, train: Callable[[Config, str], Any] = train_and_show
) -> Any:
    """Sliders and lists for epochs, categories, batch size and learning rate, plus a Train button.

    Nothing trains until the button is clicked, so the cell displays but does nothing when the
    notebook runs headless (papermill, nbval). A click trains `approach` with the chosen values
    into `checkpoint_dir/widget_runs/`, leaving the notebook's own outputs alone.
    """
    import ipywidgets as widgets

    categories = list_categories(cfg.data_dir) or list(cfg.categories)
    epochs = widgets.IntSlider(
        value=cfg.epochs, min=1, max=max(50, cfg.epochs), description="epochs"
    )
    chosen = widgets.SelectMultiple(
        options=categories,
        value=[c for c in cfg.categories if c in categories],
        rows=min(len(categories), 8),
        description="categories",
    )
    batch_size = widgets.Dropdown(
        options=sorted({8, 16, 32, 64, cfg.batch_size}), value=cfg.batch_size, description="batch"
    )
    learning_rate = widgets.FloatLogSlider(
        value=cfg.learning_rate, base=10, min=-5, max=-1, step=0.25, description="learning rate"
    )
    button = widgets.Button(description=f"Train {OUTPUT_PREFIX[approach]}", button_style="primary")
    output = widgets.Output()

    def on_click(_button: Any) -> None:
        output.clear_output()
        with output:
            try:
                chosen_cfg = dataclasses.replace(
                    cfg,
                    epochs=epochs.value,
                    categories=tuple(chosen.value),
                    batch_size=batch_size.value,
                    learning_rate=learning_rate.value,
                    checkpoint_dir=str(Path(cfg.checkpoint_dir) / WIDGET_RUNS),
                )
            except ValueError as error:  # for example fewer than two categories chosen
                print(error)
                return
            train(chosen_cfg, approach)

    button.on_click(on_click)
    hint = widgets.HTML("Ctrl/Shift-click to choose several categories.")
    return widgets.VBox([epochs, chosen, hint, batch_size, learning_rate, button, output])
