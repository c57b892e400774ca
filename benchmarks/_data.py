"""Synthetic wide tables for speed benchmarks (seeded; not used for quality claims)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def wide_table(n: int, *, seed: int = 0, with_target: bool = True) -> pd.DataFrame:
    """``n`` rows × 25 feature columns (18 numeric, 4 categorical, 3 boolean) and a 0/1 ``target``.

    The target follows a logistic model with an interaction, so models have real work to do.
    """
    rng = np.random.default_rng(seed)
    cols: dict[str, np.ndarray] = {}
    for i in range(18):
        cols[f"num_{i}"] = rng.normal(size=n) * (1 + i % 3)
    for i in range(4):
        cols[f"cat_{i}"] = rng.choice([f"L{j}" for j in range(5 + 3 * i)], size=n)
    for i in range(3):
        cols[f"flag_{i}"] = rng.random(n) < 0.3
    frame = pd.DataFrame(cols)
    if with_target:
        logit = (
            -2.2
            + 0.8 * cols["num_0"]
            - 0.5 * cols["num_1"]
            + 0.3 * cols["num_2"] * cols["num_3"]
            + 0.6 * (cols["cat_0"] == "L1")
            + 0.7 * cols["flag_0"]
        )
        frame["target"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame
