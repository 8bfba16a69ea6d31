"""``python -m captum_fillblanks``: the ``captum-fillblanks`` command, also under
``torchrun -m captum_fillblanks``."""

from .cli import main

raise SystemExit(main())
