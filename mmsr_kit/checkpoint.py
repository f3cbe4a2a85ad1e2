"""Checkpoints for resuming a run: written atomically, read back without pickles.

A run with an output folder writes `RUN_DIR/checkpoints/ckpt-<step>/` after every epoch and every
`train.checkpoint_steps` steps:

    model.safetensors   the weights now            best.safetensors   the best weights so far (validation)
    optimizer.pt        AdamW's state (tensors and numbers: loaded with weights_only=True)
    rng.pt              torch (CPU and each CUDA device), numpy and Python random states, as tensors and numbers
    state.json          epoch, step in the epoch, scheduler, history, best score, loss so far in the epoch ...

A checkpoint is written into a temporary folder, renamed into place, and only then named in `latest.json`
(itself replaced atomically): a run killed while writing leaves the previous checkpoint as the latest.
"""
import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file


def checkpoint_dir(run_dir):
    return Path(run_dir) / "checkpoints"


def _host(state):
    return {k: v.detach().cpu().contiguous() for k, v in state.items()}


def rng_states():
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos), "has_gauss": int(has_gauss),
                  "cached": float(cached)},
        "python": random.getstate(),
    }


def set_rng_states(states):
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    n = states["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))


def save_checkpoint(run_dir, step, model_state, best_state, optimizer, state):
    """Write checkpoint `step` (a global step count) and make it the latest; older ones are removed."""
    folder = checkpoint_dir(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"ckpt-{step:09d}"
    tmp = folder / f"{name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file(_host(model_state), str(tmp / "model.safetensors"))
    if best_state is not None:
        save_file(_host(best_state), str(tmp / "best.safetensors"))
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    torch.save(rng_states(), tmp / "rng.pt")
    (tmp / "state.json").write_text(json.dumps(state))
    shutil.rmtree(folder / name, ignore_errors=True)
    os.replace(tmp, folder / name)
    pointer = folder / f"latest.json.partial-{os.getpid()}"
    pointer.write_text(json.dumps({"checkpoint": name, "step": step}))
    os.replace(pointer, folder / "latest.json")
    for old in folder.iterdir():  # earlier checkpoints and any partial one a killed run left behind
        if old.name not in (name, "latest.json"):
            shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink(missing_ok=True)
    return folder / name


def latest_checkpoint(run_dir):
    """The folder `latest.json` names, or None when the run has no checkpoint yet."""
    pointer = checkpoint_dir(run_dir) / "latest.json"
    if not pointer.exists():
        return None
    return checkpoint_dir(run_dir) / json.loads(pointer.read_text())["checkpoint"]


def load_checkpoint(path, device="cpu"):
    """(model state, best state or None, optimizer state, rng states, state) of checkpoint folder `path`; nothing
    in it is unpickled beyond tensors, numbers and containers (weights_only=True)."""
    path = Path(path)
    best = path / "best.safetensors"
    return (load_file(str(path / "model.safetensors"), device=str(device)),
            load_file(str(best), device=str(device)) if best.exists() else None,
            torch.load(path / "optimizer.pt", map_location=device, weights_only=True),
            torch.load(path / "rng.pt", weights_only=True),
            json.loads((path / "state.json").read_text()))
