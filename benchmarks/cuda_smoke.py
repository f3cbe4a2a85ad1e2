"""The foundation on a GPU: every sequence model trains on CUDA with bf16 autocast, and one workshop-size
run (SASRec on MovieLens-100k) on CUDA next to its CPU numbers. Prints one JSON line per run.

    python benchmarks/cuda_smoke.py            # needs a CUDA device; about 2 minutes on one H100
"""
import json
import time

import torch

from mmsr_kit import fit, make_config


def run(preset, **overrides):
    cfg = make_config(preset, overrides={"train.device": "cuda", **overrides})
    t = time.perf_counter()
    r = fit(cfg, results=False, progress=False)
    m = r.metrics
    print(json.dumps({"preset": preset, **overrides, "device": m["device"], "test_hr@10": round(m["test"]["hr@10"], 4),
                      "test_ndcg@10": round(m["test"]["ndcg@10"], 4), "best_epoch": m["best_epoch"],
                      "seq_per_s": round(m["sequences_per_s"] or 0), "peak_mb": round(m["peak_memory_mb"]),
                      "wall_s": round(time.perf_counter() - t, 1)}), flush=True)
    return r


if __name__ == "__main__":
    assert torch.cuda.is_available(), "no CUDA device"
    print(torch.cuda.get_device_name(), torch.__version__, flush=True)
    for sequence in ("sasrec", "gru4rec", "nextitnet"):
        for data in ("synthetic", "ml-100k"):
            run("smoke", **{"model.sequence": sequence, "data.name": data})
    a = run("smoke", **{"train.epochs": 2})
    b = run("smoke", **{"train.epochs": 2})
    print(json.dumps({"deterministic_on_cuda": a.history == b.history}))
    run("workshop", **{"data.name": "ml-100k", "model.mode": "mostpop"})
    run("workshop", **{"data.name": "ml-100k", "train.epochs": 150})  # the measurement README quotes: 150 epochs
    run("workshop", **{"data.name": "ml-100k", "train.epochs": 150, "train.bf16": False})
