"""advlit: a literate reproduction package for fast and robust adversarial training.

Importing :mod:`advlit` is cheap: it imports torch but never torchvision (the vision
datasets import it lazily). The number of CPU threads torch uses is taken from the
environment variable ``ADVLIT_THREADS`` (default 1, the deterministic setting CI and the
cached run records use).
"""
from advlit.utils import configure_threads

__version__ = "0.1.0"

try:
    configure_threads()
except ValueError:  # a bad ADVLIT_THREADS: `advlit` (cli.main) stops with one line saying so
    pass
