"""``python -m mixedlm_ext``: see :mod:`mixedlm_ext.cli`."""
import sys

from .cli import main

sys.exit(main())
