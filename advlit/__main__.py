"""``python -m advlit``: the command line (:func:`advlit.cli.main`), also the form ``torchrun``
starts each rank of a data-parallel run with (``torchrun --nproc_per_node 2 -m advlit train ...``)."""
import sys

from advlit.cli import main

if __name__ == "__main__":
    sys.exit(main())
