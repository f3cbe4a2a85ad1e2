"""Training speed of three paths on the same config, seed and batches, side by side in one process:

- reference: every occurrence encoded (inputs, targets and negatives each encoded again, as the paper's
  release and its peers do) and every encoder layer run each step;
- unique items: each distinct item of a batch encoded once, every layer run each step;
- kit default: unique items, and frozen encoder parts (a frozen encoder; the text blocks below the trained
  ones) computed once per item, before the timed steps (their one-off cost is printed apart).

    python benchmarks/train_speed.py [--preset workshop] [--mode mmsr] [--steps 6] [--set key=value ...]
    python benchmarks/train_speed.py --preset workshop --mode mmsr_t --set data.name=ml-100k \
        --set model.text_encoder=minilm --set model.text_blocks=2

The table gives sequences and item encodes per second, the first step's seconds, and the ratio to the reference.
"""
import argparse
import time

import torch

from mmsr_kit import load_split, make_config
from mmsr_kit.config import parse_sets
from mmsr_kit.data.batches import TrainWindows
from mmsr_kit.modes import build_model
from mmsr_kit.train import param_groups


def measure(cfg, data, batches, every, cache):
    cfg.model.encode_every_occurrence, cfg.model.cache_frozen = every, cache
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg, data).train()
    optimizer = torch.optim.AdamW(param_groups(model, cfg.train))
    encodes = 0

    def step(inputs, targets, negatives):
        loss = model(inputs, targets, negatives)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    start = time.perf_counter()
    step(*batches[0])  # warm-up; fills the caches of frozen parts
    warmup = time.perf_counter() - start
    start = time.perf_counter()
    for inputs, targets, negatives in batches[1:]:
        ids = torch.stack([inputs, targets, negatives])
        encodes += int((ids > 0).sum()) if every else len(torch.unique(ids[ids > 0]))
        step(inputs, targets, negatives)
    seconds = time.perf_counter() - start
    sequences = sum(len(b[0]) for b in batches[1:])
    return sequences / seconds, encodes / seconds, seconds, warmup


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
    paths = (("reference", True, False), ("unique items", False, False), ("kit default", False, True))
    rows = {name: measure(cfg, data, batches, every, cache) for name, every, cache in paths}
    print(f"{args.preset} / {args.mode} / {cfg.data.name} / {cfg.model.sequence}, batch {bs}, {args.steps} steps, "
          f"{torch.get_num_threads()} threads, device cpu")
    print(f"{'path':<14}{'sequences/s':>13}{'encodes/s':>11}{'seconds':>9}{'first step s':>14}{'vs reference':>14}")
    for name, (seq, enc, sec, warm) in rows.items():
        print(f"{name:<14}{seq:>13.1f}{enc:>11.0f}{sec:>9.2f}{warm:>14.2f}{seq / rows['reference'][0]:>13.2f}x")
    print(f"speed-up (sequences/s, kit default / reference): {rows['kit default'][0] / rows['reference'][0]:.2f}x")


if __name__ == "__main__":
    main()
