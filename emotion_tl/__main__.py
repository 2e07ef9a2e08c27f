"""`python -m emotion_tl` runs the command line."""

import sys

from emotion_tl.cli import main

if __name__ == "__main__":
    sys.exit(main())
