"""``freeview app``: launches the studio (same options as ``python app.py``)."""

from __future__ import annotations


def add_launch_arguments(parser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=7860, help="port (default: 7860)")
    parser.add_argument("--share", action="store_true", help="also open a public gradio share link (opt-in)")
    parser.add_argument("--model", default=None, help="model directory (default: the embedded default model)")


def register(subparsers, bench) -> None:
    parser = subparsers.add_parser("app", help="open the FreeView studio in the browser")
    add_launch_arguments(parser)
    parser.set_defaults(func=_run)
    from .bench import register as register_bench

    register_bench(bench)


def _run(args) -> int:
    from .app import launch

    launch(host=args.host, port=args.port, share=args.share, model=args.model)
    return 0
