"""`python -m emotion_tl.weights`, kept working: the same as `python -m emotion_tl weights`.

The weights code lives in `emotion_tl.model.weights`.
"""

import sys

from emotion_tl.cli import main

if __name__ == "__main__":
    sys.exit(main(["weights", *sys.argv[1:]]))
