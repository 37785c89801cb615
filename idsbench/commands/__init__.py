"""Sub-commands that live in their own modules.

Each module here defines ``register(cli, groups)`` where ``groups`` maps group names
(``"datasets"``, ``"models"``) to click groups; :mod:`idsbench.cli` calls it at import time.
"""

COMMAND_MODULES = ("audit", "bench", "sweep", "plugins")
