"""Launch the FreeView studio: ``python app.py [--host 127.0.0.1] [--port N] [--share] [--model DIR]``."""

import argparse
import sys

from studio.cli import add_launch_arguments


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="FreeView studio")
    add_launch_arguments(parser)
    args = parser.parse_args(argv)
    from studio.app import launch

    launch(host=args.host, port=args.port, share=args.share, model=args.model)
    return 0


if __name__ == "__main__":
    sys.exit(main())
