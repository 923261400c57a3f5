"""``python -m samwidgets <command>``: the same as the ``samwidgets`` console script."""

from .cli import main
from .runtime.distributed import exit_process

# exit_process: under torchrun a rank leaves without interpreter teardown (see there)
exit_process(main())
