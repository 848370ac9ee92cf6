"""Rewrite an anatomy parameter file of the version-1 layout in the current format (same numbers).

    python -m harmony_eval.backends.anatomy.upgrade OLD.json [--out NEW.json]   # default: in place

A file already in the current format is validated and rewritten unchanged (byte-identical when it was
written by ``mapping.save_params``). Bad input: one line naming the file and the problem, exit 2.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence

from .mapping import load_params, save_params


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m harmony_eval.backends.anatomy.upgrade", description=__doc__)
    ap.add_argument("path", help="anatomy parameter JSON (version 1 or current)")
    ap.add_argument("--out", default=None, help="where to write it (default: over PATH)")
    args = ap.parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the warning names this very command
            params = load_params(args.path)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = args.out or args.path
    try:
        save_params(params, out)
    except OSError as e:
        print(f"error: --out {out}: cannot write ({e.strerror})", file=sys.stderr)
        return 2
    print(f"wrote {out}: {len(params.models)} region model(s) ({', '.join(params.models)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
