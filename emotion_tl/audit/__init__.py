"""Know your data before training: near-copies, likely wrong labels and poor pictures.

`run_audit(cfg)` (the `audit` command) writes audit.csv, audit.md and audit.png to
cfg.checkpoint_dir. It reads frozen ResNet50 features, cached under checkpoint_dir/feature_cache/.
"""

from pathlib import Path

from emotion_tl.audit.report import write_audit
from emotion_tl.audit.run import Audit, audit_data
from emotion_tl.config import Config


def run_audit(cfg: Config) -> dict[str, Path]:
    """What `python -m emotion_tl audit` does: audit (changing nothing), then write the files."""
    data, audit = audit_data(cfg)
    return write_audit(data, audit, cfg)


__all__ = ["Audit", "audit_data", "run_audit", "write_audit"]
