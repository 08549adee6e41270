"""tests/rl: the repository root goes on sys.path so tests can import the `configs/` files as modules."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
