"""Training speed: each distinct item of a batch encoded once (the kit's default) vs every occurrence
(inputs, targets and negatives each encoded again: what the paper's release and its peers do).

    python benchmarks/unique_items.py [--preset workshop] [--mode mmsr] [--steps 6] [--set key=value ...]

Both paths run the same config, seed and batches, side by side in one process; the table gives
sequences and item encodes per second and their ratio.
"""
import argparse
import time

import torch

from mmsr_kit import load_split, make_config
from mmsr_kit.config import parse_sets
from mmsr_kit.data.batches import TrainWindows
from mmsr_kit.modes import build_model
from mmsr_kit.train import param_groups


def measure(cfg, data, batches, every):
    cfg.model.encode_every_occurrence = every
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg, data).train()
    optimizer = torch.optim.AdamW(param_groups(model, cfg.train))
    encodes = 0

    def step(inputs, targets, negatives):
        loss = model(inputs, targets, negatives)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    step(*batches[0])  # warm-up
    start = time.perf_counter()
    for inputs, targets, negatives in batches[1:]:
        ids = torch.stack([inputs, targets, negatives])
        encodes += int((ids > 0).sum()) if every else len(torch.unique(ids[ids > 0]))
        step(inputs, targets, negatives)
    seconds = time.perf_counter() - start
    sequences = sum(len(b[0]) for b in batches[1:])
    return sequences / seconds, encodes / seconds, seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="workshop")
    parser.add_argument("--mode", default="mmsr")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--set", action="append", default=[])
    args = parser.parse_args(argv)
    cfg = make_config(args.preset, overrides={"model.mode": args.mode, **parse_sets(args.set)})
    torch.set_num_threads(torch.get_num_threads())
    data = load_split(cfg.data)
    windows = TrainWindows(data)
    torch.manual_seed(0)
    order = torch.randperm(len(windows)).tolist()
    bs = cfg.train.batch_size
    batches = [windows.collate(order[i * bs : (i + 1) * bs]) for i in range(args.steps + 1)]
    rows = {name: measure(cfg, data, batches, every) for name, every in (("every occurrence", True), ("unique items", False))}
    print(f"{args.preset} / {args.mode} / {cfg.model.sequence}, batch {bs}, {args.steps} steps, "
          f"{torch.get_num_threads()} threads, device cpu")
    print(f"{'path':<18}{'sequences/s':>14}{'item encodes/s':>16}{'seconds':>10}")
    for name, (seq, enc, sec) in rows.items():
        print(f"{name:<18}{seq:>14.1f}{enc:>16.0f}{sec:>10.2f}")
    ratio = rows["unique items"][0] / rows["every occurrence"][0]
    print(f"speed-up (sequences/s, unique / every occurrence): {ratio:.2f}x")


if __name__ == "__main__":
    main()
