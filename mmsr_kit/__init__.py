"""mmsr-kit: ID-agnostic multi-modal sequential recommendation, step by step.

    from mmsr_kit import make_config, fit
    run = fit(make_config("smoke", overrides={"model.sequence": "gru4rec"}))
    run.metrics["test"]["hr@10"]
    load_run("runs/mmsr").recommend(["i12", "i7"], k=10)   # a run folder written by `mmsr train --out`
"""
from .config import Config, make_config
from .data import load_dataset, load_split
from .results import read_results
from .serve import load_run
from .train import Run, fit

__all__ = ["Config", "make_config", "fit", "Run", "load_dataset", "load_split", "load_run", "read_results"]
__version__ = "0.1.0"
