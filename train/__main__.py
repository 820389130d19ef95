"""``python -m train ARGS`` = ``freeview train ARGS`` (for ``accelerate launch -m train run --config CFG``)."""

import sys

from engine.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
