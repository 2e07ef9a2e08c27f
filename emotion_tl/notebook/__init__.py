"""The course notebooks' one import: the package's functions they call, and their widgets.

Each notebook imports from here (`from emotion_tl.notebook import ...`), so a learner sees one
place, and the package can move a function without breaking a notebook. The widgets and the
parameter glue live beside this file; everything else is re-exported from its stage.
"""

from emotion_tl.audit import audit_data
from emotion_tl.data.describe import (
    count_images,
    describe_faces,
    describe_image_files,
    summarize_image_files,
)
from emotion_tl.data.faces.crop import FaceCropSettings
from emotion_tl.data.files import load_image
from emotion_tl.data.metadata import read_metadata, summarize_metadata
from emotion_tl.data.prepare import prepare_data
from emotion_tl.demo_faces import make_sample, render_scene
from emotion_tl.evaluation.comparison import load_approach_outputs, load_comparison
from emotion_tl.evaluation.feature_map import (
    map_images,
    map_sources,
    plot_feature_map_report,
    show_source_inputs,
)
from emotion_tl.evaluation.repeats import describe_repeats, read_repeats
from emotion_tl.evaluation.report import (
    plot_comparison_report,
    plot_gradcam_report,
    plot_hardest_images,
)
from emotion_tl.evaluation.sources import (
    build_sources_comparison,
    describe_sources,
    find_sources_comparison,
)
from emotion_tl.evaluation.summary import (
    accuracy_by_intensity,
    compare_saved_runs,
    find_disagreements,
    make_guide_table,
    measure_approaches,
    plot_disagreements,
    write_summary,
)
from emotion_tl.figures.evaluation import plot_confusion_matrix, plot_sources
from emotion_tl.figures.faces import plot_face_crops
from emotion_tl.figures.repeats import plot_repeats
from emotion_tl.figures.training import plot_histories, plot_history, plot_running_means
from emotion_tl.model.batchnorm import (
    first_batchnorm,
    mean_change,
    pass_in_each_mode,
    running_mean,
)
from emotion_tl.model.checkpoint import load_checkpoint, model_from_checkpoint
from emotion_tl.model.network import build_model, make_param_groups, make_parameter_table
from emotion_tl.notebook.cleaner import make_cleaner
from emotion_tl.notebook.parameters import (
    ParameterError,
    config_from_parameters,
    make_training_widgets,
)
from emotion_tl.notebook.photo_widget import make_photo_widget
from emotion_tl.training.approach import train_approach
from emotion_tl.training.rate_demo import compare_learning_rates, rate_table
from emotion_tl.training.run import prepare_run, summarize
from emotion_tl.training.sources import resolve_sources, run_sources

__all__ = [
    "FaceCropSettings",
    "ParameterError",
    "accuracy_by_intensity",
    "audit_data",
    "build_model",
    "build_sources_comparison",
    "compare_learning_rates",
    "compare_saved_runs",
    "config_from_parameters",
    "count_images",
    "describe_faces",
    "describe_image_files",
    "describe_repeats",
    "describe_sources",
    "find_disagreements",
    "find_sources_comparison",
    "first_batchnorm",
    "load_approach_outputs",
    "load_checkpoint",
    "load_comparison",
    "load_image",
    "make_cleaner",
    "make_guide_table",
    "make_param_groups",
    "make_parameter_table",
    "make_photo_widget",
    "make_sample",
    "make_training_widgets",
    "map_images",
    "map_sources",
    "mean_change",
    "measure_approaches",
    "model_from_checkpoint",
    "pass_in_each_mode",
    "plot_comparison_report",
    "plot_confusion_matrix",
    "plot_disagreements",
    "plot_face_crops",
    "plot_feature_map_report",
    "plot_gradcam_report",
    "plot_hardest_images",
    "plot_histories",
    "plot_history",
    "plot_repeats",
    "plot_running_means",
    "plot_sources",
    "prepare_data",
    "prepare_run",
    "rate_table",
    "read_metadata",
    "read_repeats",
    "render_scene",
    "resolve_sources",
    "run_sources",
    "running_mean",
    "show_source_inputs",
    "summarize",
    "summarize_image_files",
    "summarize_metadata",
    "train_approach",
    "write_summary",
]
