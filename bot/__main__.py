"""`python3 -m bot …` and the `citybot` command."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    """Make sure the environment is complete, then run the CLI."""
    from bot.bootstrap import ensure_environment

    args = list(sys.argv[1:] if argv is None else argv)
    ensure_environment(args)
    from bot.cli import run

    sys.exit(run(args))


if __name__ == "__main__":
    main()
