"""``python -m cnnreg`` runs the command-line interface.

``python -m`` puts the current folder first on ``sys.path``, so a module named like one that
cnnreg imports later, or named in a file, would be imported from wherever the command is typed.
That entry is dropped before anything else is imported (``cnnreg`` itself is imported already;
Python 3.11's ``python -P -m cnnreg`` keeps the folder out from the start).
"""

import os
import sys

if __name__ == "__main__" and sys.path and sys.path[0] in ("", ".", os.getcwd()):
    del sys.path[0]

from cnnreg.cli import main  # noqa: E402

if __name__ == "__main__":
    main()
