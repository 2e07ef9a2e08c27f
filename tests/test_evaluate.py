import io
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    roc_auc_score,
)

from emotion_tl.evaluation.metrics import (
    compute_accuracy,
    compute_losses,
    compute_mean_loss,
    evaluate_predictions,
)
from emotion_tl.evaluation.paired import compute_mcnemar_p_value, evaluate_mcnemar
from emotion_tl.evaluation.predictions import (
    find_hardest,
    make_predictions_table,
    read_predictions_table,
)

CLASSES = ["angry", "happy", "sad"]
LABELS = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 2])
PROBABILITIES = np.array(
    [
        [0.7, 0.2, 0.1],
        [0.3, 0.6, 0.1],  # wrong: happy
        [0.5, 0.1, 0.4],
        [0.1, 0.8, 0.1],
        [0.2, 0.3, 0.5],  # wrong: sad
        [0.1, 0.6, 0.3],
        [0.1, 0.1, 0.8],
        [0.2, 0.2, 0.6],
        [0.6, 0.1, 0.3],  # wrong: angry
        [0.3, 0.3, 0.4],
    ]
)


def test_metrics_agree_with_scikit_learn():
    evaluation = evaluate_predictions(LABELS, PROBABILITIES, CLASSES)
    predictions = PROBABILITIES.argmax(1)
    assert evaluation.accuracy == pytest.approx(7 / 10)
    assert evaluation.balanced_accuracy == pytest.approx(
        balanced_accuracy_score(LABELS, predictions)
    )
    assert evaluation.balanced_accuracy == pytest.approx((2 / 3 + 2 / 3 + 3 / 4) / 3)
    assert evaluation.macro_f1 == pytest.approx(f1_score(LABELS, predictions, average="macro"))
    precision, recall, f1, support = precision_recall_fscore_support(LABELS, predictions)
    np.testing.assert_allclose(evaluation.per_class["precision"], precision)
    np.testing.assert_allclose(evaluation.per_class["recall"], recall)
    np.testing.assert_allclose(evaluation.per_class["f1"], f1)
    assert evaluation.per_class["support"].tolist() == support.tolist() == [3, 3, 4]
    assert evaluation.roc_auc is None  # three classes
    np.testing.assert_array_equal(evaluation.confusion, confusion_matrix(LABELS, predictions))
    np.testing.assert_allclose(evaluation.confusion_normalized.sum(axis=1), 1.0)
    assert evaluation.confusion_normalized.loc["sad", "sad"] == pytest.approx(3 / 4)
    assert list(evaluation.confusion.index) == CLASSES


def test_two_classes_get_a_roc_auc():
    labels = np.array([0, 0, 1, 1, 1])
    scores = np.array([0.1, 0.6, 0.4, 0.8, 0.9])
    probabilities = np.stack([1 - scores, scores], axis=1)
    evaluation = evaluate_predictions(labels, probabilities, ["neutral", "confused"])
    assert evaluation.roc_auc == pytest.approx(roc_auc_score(labels, scores))
    assert evaluation.roc_auc == pytest.approx(5 / 6)  # 5 of 6 (positive, negative) pairs ordered
    assert evaluation.to_dict()["confusion"] == [[1, 1], [1, 2]]


def test_mcnemar_matches_the_exact_binomial_worked_by_hand():
    # 9 images only fine-tuning got right, 2 only frozen: under "no difference" each discordant
    # image is a fair coin, so p = 2 * P(X <= 2), X ~ Binomial(11, 1/2).
    by_hand = 2 * sum(math.comb(11, k) for k in range(3)) / 2**11
    assert by_hand == pytest.approx(0.0654, abs=1e-4)
    assert compute_mcnemar_p_value(2, 9) == pytest.approx(by_hand)
    assert compute_mcnemar_p_value(9, 2) == pytest.approx(by_hand)
    assert compute_mcnemar_p_value(0, 0) == 1.0
    assert compute_mcnemar_p_value(0, 12) == pytest.approx(2 / 2**12)


def test_mcnemar_counts_the_discordant_pairs_and_says_it_in_words():
    labels = np.zeros(20, dtype=int)
    frozen = np.ones(20, dtype=int)
    frozen[:4] = 0  # frozen right on images 0-3
    finetuning = np.ones(20, dtype=int)
    finetuning[2:13] = 0  # fine-tuning right on images 2-12
    result = evaluate_mcnemar(labels, frozen, finetuning, ("frozen", "fine-tuning"))
    assert (result.only_a_right, result.only_b_right) == (2, 9)
    assert result.sentence() == (
        "fine-tuning got 9 test images right that frozen got wrong and 2 the other way; "
        "p = 0.065: not significant at this test-set size."
    )
    assert not result.significant and result.to_dict()["p_value"] == pytest.approx(0.0654, 1e-3)

    clear = evaluate_mcnemar(labels, np.zeros(20, dtype=int), frozen, ("A", "B"))
    assert clear.significant and "significant at the 5% level" in clear.sentence()
    assert "A got 16 test images right" in clear.sentence()


def test_predictions_table_round_trips_and_losses_rank_mistakes():
    files = [f"img{i}.png" for i in range(len(LABELS))]
    table = make_predictions_table(files, PROBABILITIES, CLASSES, LABELS)
    assert list(table.columns) == ["file", "label", "predicted", *[f"prob_{c}" for c in CLASSES]]
    assert table.loc[8, "predicted"] == "angry" and table.loc[8, "label"] == "sad"
    labels, probabilities = read_predictions_table(
        pd.read_csv(io.StringIO(table.to_csv(index=False))), CLASSES
    )
    np.testing.assert_array_equal(labels, LABELS)
    np.testing.assert_allclose(probabilities, PROBABILITIES)
    losses = compute_losses(LABELS, PROBABILITIES)
    # The three mistakes each gave the true class 0.3, the least of any image.
    assert set(np.argsort(-losses)[:3]) == {1, 4, 8}
    assert losses[4] == pytest.approx(-math.log(0.3))
    with pytest.raises(ValueError, match="outside"):
        read_predictions_table(table.assign(label="bored"), CLASSES)


def test_accuracy_and_mean_loss_agree_with_torch():
    assert compute_accuracy(LABELS, PROBABILITIES) == pytest.approx(7 / 10)
    torch = pytest.importorskip("torch")
    log_probabilities = torch.log(torch.tensor(PROBABILITIES))
    labels = torch.tensor(LABELS)
    weights = np.array([0.5, 1.0, 2.0])
    # nn.NLLLoss on log-probabilities is the cross-entropy the training loss computes.
    plain = torch.nn.NLLLoss()(log_probabilities, labels).item()
    weighted = torch.nn.NLLLoss(weight=torch.tensor(weights))(log_probabilities, labels).item()
    assert compute_mean_loss(LABELS, PROBABILITIES) == pytest.approx(plain)
    assert compute_mean_loss(LABELS, PROBABILITIES, weights) == pytest.approx(weighted)
    assert weighted != pytest.approx(plain)


def test_hardest_images_come_first_with_the_predicted_probability():
    files = [f"img{i}.png" for i in range(len(LABELS))]
    table = make_predictions_table(files, PROBABILITIES, CLASSES, LABELS)
    hardest = find_hardest(table, CLASSES, 3)
    # The three mistakes gave the true class 0.3 each; the first in file order comes first.
    assert list(hardest["file"]) == ["img1.png", "img4.png", "img8.png"]
    assert list(hardest["probability"]) == pytest.approx([0.6, 0.5, 0.6])
    assert len(find_hardest(table, CLASSES, 50)) == len(LABELS)
