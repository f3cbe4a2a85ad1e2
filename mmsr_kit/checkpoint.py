"""Checkpoints for resuming a run: written durably, verified before use, read back without pickles.

A run with an output folder writes `RUN_DIR/checkpoints/ckpt-<step>/` after every epoch and every
`train.checkpoint_steps` steps:

    model.safetensors   the weights now            best.safetensors   the best weights so far (validation)
    optimizer.pt        AdamW's state (tensors and numbers: loaded with weights_only=True)
    state.json          epoch, step in the epoch, scheduler, history, best score, loss so far in the epoch ...
    files.json          the size and sha256 of each file above (written last)

No random state is stored: each training step seeds itself from (seed, step, process), so the step after a
checkpoint draws what it would have drawn in an uninterrupted run (`train.seed_step`).

A checkpoint is written into a temporary folder, each file fsynced, renamed into place (the folder fsynced), and
only then named in `latest.json` (itself fsynced and replaced atomically). The previous checkpoint is kept: a
latest one whose files do not match `files.json` (a torn write, a disk error) is skipped with a logged line.
"""
import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .faults import crash_point

log = logging.getLogger(__name__)


class CorruptCheckpoint(RuntimeError):
    """No checkpoint of a run folder matches its recorded sizes and checksums."""


def checkpoint_dir(run_dir):
    return Path(run_dir) / "checkpoints"


def _host(state):
    return {k: v.detach().cpu().contiguous() for k, v in state.items()}


def _fsync(path):
    """Flush a file's (or a folder's: its entries') writes to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_durably(path, text):
    """Replace `path` by `text` atomically: a crash leaves the old file or the new one, never half of one."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.partial-{os.getpid()}")
    tmp.write_text(text)
    _fsync(tmp)
    os.replace(tmp, path)
    _fsync(path.parent)


def save_checkpoint(run_dir, step, model_state, best_state, optimizer, state):
    """Write checkpoint `step` (a global step count) and make it the latest; keeps it and the one before."""
    folder = checkpoint_dir(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"ckpt-{step:09d}"
    tmp = folder / f"{name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file(_host(model_state), str(tmp / "model.safetensors"))
    crash_point("checkpoint_write")
    if best_state is not None:
        save_file(_host(best_state), str(tmp / "best.safetensors"))
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    (tmp / "state.json").write_text(json.dumps(state))
    files = {}
    for file in sorted(tmp.iterdir()):
        _fsync(file)
        files[file.name] = {"size": file.stat().st_size, "sha256": _sha256(file)}
    (tmp / "files.json").write_text(json.dumps(files))
    _fsync(tmp / "files.json")
    _fsync(tmp)
    previous = _named(folder)
    shutil.rmtree(folder / name, ignore_errors=True)
    os.replace(tmp, folder / name)
    _fsync(folder)
    keep = [name] + [p for p in previous if p != name][:1]
    write_durably(folder / "latest.json", json.dumps({"checkpoint": name, "step": step, "previous": keep[1:]}))
    for old in folder.iterdir():  # older checkpoints and any partial one a killed run left behind
        if old.name not in (*keep, "latest.json"):
            shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink(missing_ok=True)
    return folder / name


def _named(folder):
    """The checkpoints latest.json names, newest first (none when there is no latest.json)."""
    pointer = Path(folder) / "latest.json"
    if not pointer.exists():
        return []
    record = json.loads(pointer.read_text())
    return [record["checkpoint"], *record.get("previous", [])]


def verify(path):
    """Why checkpoint folder `path` cannot be trusted (a sentence), or None when every file matches files.json."""
    path = Path(path)
    try:
        files = json.loads((path / "files.json").read_text())
    except (OSError, ValueError):
        return "files.json is missing or unreadable"
    for name, want in files.items():
        file = path / name
        if not file.is_file():
            return f"{name} is missing"
        if file.stat().st_size != want["size"]:
            return f"{name} has {file.stat().st_size} bytes, {want['size']} recorded"
        if _sha256(file) != want["sha256"]:
            return f"{name} does not match its recorded sha256"
    return None


def latest_checkpoint(run_dir, check=False):
    """The newest checkpoint folder of a run, or None when it has none. With `check`, the newest whose files match
    their recorded sizes and checksums: a corrupt one is skipped with a logged line; none intact is an error."""
    names = _named(checkpoint_dir(run_dir))
    if not check:
        return checkpoint_dir(run_dir) / names[0] if names else None
    problems = []
    for name in names:
        problem = verify(checkpoint_dir(run_dir) / name)
        if problem is None:
            if problems:
                log.warning("checkpoint %s is corrupt (%s): resuming from %s instead", names[0], problems[0], name)
            return checkpoint_dir(run_dir) / name
        problems.append(problem)
    if names:
        raise CorruptCheckpoint(f"{run_dir}: no intact checkpoint ("
                                + "; ".join(f"{n}: {p}" for n, p in zip(names, problems)) + ")")
    return None


def load_checkpoint(path, device="cpu"):
    """(model state, best state or None, optimizer state, state) of checkpoint folder `path`; nothing in it is
    unpickled beyond tensors, numbers and containers (weights_only=True)."""
    path, device = Path(path), torch.device(device)
    where = "cpu" if device.type == "cpu" else str(device)  # safetensors takes "cpu", never "cpu:0" (a gloo rank's)
    best = path / "best.safetensors"
    return (load_file(str(path / "model.safetensors"), device=where),
            load_file(str(best), device=where) if best.exists() else None,
            torch.load(path / "optimizer.pt", map_location=where, weights_only=True),
            json.loads((path / "state.json").read_text()))
