"""``python -m cpdouble [--port 9100] [--token T] [--root DIR]``: run the double in the foreground.

``manage.py fake_controlplane`` does the same with the console's settings as defaults.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from cpdouble.server import serve


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m cpdouble", description=__doc__)
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--token", default=os.environ.get("MOLECULE_CONTROLPLANE_TOKEN", ""))
    parser.add_argument("--root", type=Path, default=None)
    args = parser.parse_args()
    if not args.token:
        parser.error("give --token or set MOLECULE_CONTROLPLANE_TOKEN (the shared secret)")
    root = args.root or Path(tempfile.mkdtemp(prefix="cpdouble-"))
    serve(port=args.port, token=args.token, root=root)


if __name__ == "__main__":
    main()
