"""Stage 4, training: the one loop (loop), the frozen approach's feature cache (feature_cache),
one approach from start to finish (approach, outputs), stopping and resuming (resume), and a
whole run of both approaches (run)."""
