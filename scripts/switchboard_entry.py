"""Entry script of the frozen bundle (build.spec): the same dispatch as `python -m client`."""

from __future__ import annotations

import sys

from client.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
