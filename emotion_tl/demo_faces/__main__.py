"""`python -m emotion_tl.demo_faces`, kept: the same as `python -m emotion_tl demo-faces`."""

import sys

from emotion_tl.cli import main

if __name__ == "__main__":
    sys.exit(main(["demo-faces", *sys.argv[1:]]))
