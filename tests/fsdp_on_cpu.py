"""``accelerate launch --config_file FSDP.yaml -m tests.fsdp_on_cpu ARGS`` = ``python -m train ARGS`` with FSDP on CPU.

accelerate (1.15) turns FSDP on only for accelerator devices: on CPU processes it silently trains with DDP
(``DistributedType.MULTI_CPU``) and ignores the FSDP plugin, although torch's FSDP runs on gloo. This lifts that
one gate, so the tests run the sharded path (accelerate's FSDP prepare, sharded ``save_state``/``load_state``,
the full-state gather for export) on two CPU processes; nothing else is changed.
"""

import sys

import accelerate.state
from accelerate.utils import DistributedType

from engine.cli import main

_init = accelerate.state.AcceleratorState.__init__


def _fsdp_on_cpu(self, *args, fsdp_plugin=None, **kwargs):
    _init(self, *args, fsdp_plugin=fsdp_plugin, **kwargs)
    if fsdp_plugin is not None and self.distributed_type == DistributedType.MULTI_CPU:
        self.distributed_type = DistributedType.FSDP
        self.fsdp_plugin = fsdp_plugin
        accelerate.state.PartialState._shared_state["distributed_type"] = DistributedType.FSDP


accelerate.state.AcceleratorState.__init__ = _fsdp_on_cpu

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
