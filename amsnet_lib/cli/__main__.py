"""``python -m amsnet_lib.cli``: the ``amsnet`` command."""
import sys

from . import main

sys.exit(main())
