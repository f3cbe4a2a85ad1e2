"""Training speed of three paths on the same config, seed and batches, side by side in one process:

- reference: every occurrence encoded (inputs, targets and negatives each encoded again, as the paper's
  release and its peers do) and every encoder layer run each step, fp32;
- unique items: each distinct item of a batch encoded once, every layer run each step;
- kit default: unique items, and frozen encoder parts (a frozen encoder; the blocks below the trained ones)
  computed once per item, before the timed steps (their one-off cost is the "first step" column).

    python benchmarks/train_speed.py [--preset workshop] [--mode mmsr] [--steps 12] [--set key=value ...]
    python benchmarks/train_speed.py --preset workshop --mode mmsr_t --set data.name=ml-100k \
        --set model.text_encoder=minilm --set model.text_blocks=2

The paths take turns step by step (reference, unique, kit, reference, ...), so a slower spell of a shared
machine falls on all three; each path's speed is from its median step. Peak memory: each path again in a
fresh process for two steps (peak resident memory above the loaded model on CPU, peak allocated on CUDA);
`--no-memory` skips it. The table gives sequences and item encodes per second, the first step's seconds,
peak memory and the ratio to the reference.
"""
import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from mmsr_kit import load_split, make_config
from mmsr_kit.config import parse_sets
from mmsr_kit.data.batches import TrainWindows
from mmsr_kit.modes import build_model
from mmsr_kit.train import make_optimizer

PATHS = {"reference": (True, False), "unique items": (False, False), "kit default": (False, True)}


class Runner:
    """One path's model, optimizer and step."""

    def __init__(self, cfg, data, device, every, cache):
        cfg.model.encode_every_occurrence, cfg.model.cache_frozen = every, cache
        torch.manual_seed(cfg.train.seed)
        self.model = build_model(cfg, data).to(device).train()
        self.optimizer = make_optimizer(self.model, cfg.train)
        self.every, self.device = every, device
        self.autocast = device.type == "cuda" and cfg.train.bf16 and not every  # the reference stays fp32

    def step(self, batch):
        inputs, targets, negatives = (x.to(self.device, non_blocking=True) for x in batch)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            loss = self.model(inputs, targets, negatives)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def timed_step(self, batch):
        sync(self.device)
        start = time.perf_counter()
        self.step(batch)
        sync(self.device)
        return time.perf_counter() - start

    def encodes(self, batch):
        ids = torch.stack(batch)
        return int((ids > 0).sum()) if self.every else len(torch.unique(ids[ids > 0]))


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def resident_mb(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_memory(args, name):
    """Peak memory of `name` over two steps, in a fresh process: MiB above the loaded model."""
    cmd = [sys.executable, __file__, "--only", name, "--preset", args.preset, "--mode", args.mode,
           "--device", args.device] + [f"--set={s}" for s in args.set]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])["peak_mb"]


def fixed_batches(data, batch_size, count):
    """`count` training batches in one fixed random order (seed 0): the same for every path."""
    windows = TrainWindows(data)
    torch.manual_seed(0)
    order = torch.randperm(len(windows)).tolist()
    return [windows.collate(order[i * batch_size : (i + 1) * batch_size]) for i in range(count)]


def setup(args):
    cfg = make_config(args.preset, overrides={"model.mode": args.mode, **parse_sets(args.set)})
    data = load_split(cfg.data)
    return cfg, data, fixed_batches(data, cfg.train.batch_size, args.steps + 1)


def only(args):
    """Child process: one path, two steps, its peak memory as JSON on the last line."""
    cfg, data, batches = setup(args)
    device = torch.device(args.device)
    path = Runner(cfg, data, device, *PATHS[args.only])
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        Path("/proc/self/clear_refs").write_text("5")  # reset the peak resident set size to the current one
        before = resident_mb("VmRSS")
    for batch in batches[:2]:
        path.step(batch)
    sync(device)
    peak = (torch.cuda.max_memory_allocated() - before) / 2**20 if device.type == "cuda" else resident_mb("VmHWM") - before
    print(json.dumps({"peak_mb": peak}))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="workshop")
    parser.add_argument("--mode", default="mmsr")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--set", action="append", default=[])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--only", choices=list(PATHS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.only:
        return only(args)
    cfg, data, batches = setup(args)
    device = torch.device(args.device)
    paths = {name: Runner(cfg, data, device, *flags) for name, flags in PATHS.items()}
    first = {name: path.timed_step(batches[0]) for name, path in paths.items()}  # warm-up; fills the caches
    seconds = {name: [] for name in paths}
    for batch in batches[1:]:
        for name, path in paths.items():  # taking turns
            seconds[name].append(path.timed_step(batch))
    bs = cfg.train.batch_size
    rows = {}
    for name, path in paths.items():
        step = statistics.median(seconds[name])
        encodes = statistics.median(path.encodes(b) for b in batches[1:])
        rows[name] = (bs / step, encodes / step, sum(seconds[name]), first[name])
    memory = {} if args.no_memory else {name: peak_memory(args, name) for name in paths}
    print(f"{args.preset} / {args.mode} / {cfg.data.name} / {cfg.model.sequence}, batch {bs}, {args.steps} steps, "
          f"{torch.get_num_threads()} threads, device {device}")
    print(f"{'path':<14}{'sequences/s':>13}{'encodes/s':>11}{'seconds':>9}{'first step s':>14}{'peak MiB':>10}"
          f"{'vs reference':>14}")
    for name, (seq, enc, sec, warm) in rows.items():
        mem = f"{memory[name]:>10.0f}" if name in memory else f"{'-':>10}"
        print(f"{name:<14}{seq:>13.1f}{enc:>11.0f}{sec:>9.2f}{warm:>14.2f}{mem}{seq / rows['reference'][0]:>13.2f}x")
    print(f"speed-up (sequences/s, kit default / reference): {rows['kit default'][0] / rows['reference'][0]:.2f}x")


if __name__ == "__main__":
    main()
