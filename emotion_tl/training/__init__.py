"""Training: the one loop (loop), the frozen approach's feature cache and the loaders that feed
the head from it (feature_cache, feature_loaders), one approach from start to finish (approach,
outputs), stopping and resuming (resume), and a whole run of both approaches (run)."""
