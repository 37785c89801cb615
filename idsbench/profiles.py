"""Named training profiles: the suite's own default, the seed paper's protocol, a quick smoke run.

A profile sets the training options of networks (and may cap training rows); options given on
the command line override the profile.  The resolved values are stored in every record.
"""

from __future__ import annotations

from idsbench.errors import unknown_name

PROFILES: dict[str, dict] = {
    # ours: Adam, early stopping on the validation split, 5 epochs at most so that all models
    # finish on ToN_IoT on a 2-core laptop in well under an hour (ToN_IoT converges in 2-4 epochs)
    "default": {"epochs": 5, "batch_size": 512, "lr": 1e-3, "patience": 2, "early_stopping": True},
    # the seed paper's best setting (Table I): lr 0.001, batch 512, 100 epochs, no early stop;
    # the paper names no optimizer, Adam is ours (as in every idsbench profile)
    "paper": {"epochs": 100, "batch_size": 512, "lr": 1e-3, "patience": 0, "early_stopping": False},
    # a smoke test: minutes become seconds; numbers from it are not comparable
    "quick": {"epochs": 2, "batch_size": 512, "lr": 1e-3, "patience": 1, "early_stopping": True,
              "max_train_rows": 20000},
}

DESCRIPTIONS = {
    "default": "idsbench's default: Adam lr 1e-3, batch 512, up to 5 epochs, early stopping (patience 2) on a validation split",
    "paper": "seed paper protocol: lr 1e-3, batch 512, 100 epochs, no early stopping (Adam: ours, the paper names no optimizer)",
    "quick": "smoke test: 2 epochs on at most 20,000 training rows; not for comparison",
}


def get_profile(name: str) -> dict:
    if name not in PROFILES:
        raise unknown_name("profile", name, PROFILES)
    return dict(PROFILES[name])
