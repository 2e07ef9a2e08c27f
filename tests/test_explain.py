import numpy as np
import torch
from matplotlib.figure import Figure

from emotion_tl.evaluation.explain import compute_gradcam, plot_gradcam_comparison
from emotion_tl.evaluation.predict import Predictor
from emotion_tl.model.network import build_model, make_param_groups


def test_gradcam_is_a_map_of_the_image_size_that_is_not_constant():
    torch.manual_seed(0)
    model = build_model(2).eval()
    make_param_groups(model, "frozen", backbone_lr=0.0, head_lr=1.0)  # no backbone gradients
    images = torch.randn(2, 3, 96, 80)
    maps = compute_gradcam(model, images)
    assert maps.shape == (2, 96, 80)
    assert maps.min() >= 0.0 and maps.max() <= 1.0
    for heat in maps:
        assert heat.max() - heat.min() > 0.5  # scaled to [0, 1], so not flat
    other_class = compute_gradcam(model, images, torch.tensor([1, 0]))
    assert not np.allclose(maps, other_class)  # the map depends on the class explained


def test_gradcam_figure_shows_every_model_on_the_same_images():
    torch.manual_seed(0)
    predictors = {
        name: Predictor(
            build_model(2).eval(), ["circle", "square"], 64, 73, (0.5,) * 3, (0.25,) * 3, name
        )  # fmt: skip
        for name in ("frozen_weights", "finetuning")
    }
    images = [torch.randint(0, 255, (3, 80, 90), dtype=torch.uint8) for _ in range(2)]
    figure = plot_gradcam_comparison(predictors, images, ["circle", "square"])
    assert isinstance(figure, Figure)
    assert len(figure.axes) == 2 * 3
    assert figure.axes[1].get_title().startswith("frozen_weights")
