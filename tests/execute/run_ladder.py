"""Run a ladder file into a store: the process the SIGKILL test kills (and runs again).

Usage: python run_ladder.py LADDER.toml STORE.db CHECKPOINT_DIR TRAINER(module:function)
"""

import sys
from pathlib import Path

from scalinglab.execute import execute
from scalinglab.ladder.ladderfile import read_toml
from scalinglab.store import Store

if __name__ == "__main__":
    ladder, store, checkpoints, trainer = sys.argv[1:5]
    execute(read_toml(ladder), Store(store), checkpoint_dir=Path(checkpoints), workers=2, threads=1,
            train_fn=trainer, progress=False)
