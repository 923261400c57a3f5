"""``python -m samwidgets.bench ...``: the benchmark command under the name the developers' guide uses
(the same as ``samwidgets bench ...``)."""

from ..cli.bench import main

raise SystemExit(main())
