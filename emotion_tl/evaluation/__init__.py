"""Evaluation: run models forward (inference), score them (metrics, paired), store and
read their predictions (predictions), use checkpoints on new images (predict), explain them
(explain), and compare the two approaches (comparison, report, summary).

Nothing here imports `emotion_tl.training`: evaluation works from saved checkpoints alone.
"""
