"""Where a training epoch's time goes, per mode, at a preset: forward (of which item encoding), backward,
optimizer, data loading, and one validation; beside issue 19's targets for a 2-core CPU.

    python benchmarks/epoch_profile.py [--preset workshop] [--modes idsr mmsr_t mmsr_v mmsr] [--epochs 3]
    python benchmarks/epoch_profile.py --set train.batch_size=512 --set train.lr=2e-3

Each mode trains `--epochs` epochs through the kit's own loader (EpochBatches, collate with distinct items),
model and AdamW groups; the table shows the median epoch. "items/step" is the median number of distinct items a
step encodes: at the workshop size nearly the whole catalogue, so an epoch costs steps x catalogue through the
encoders and the batch size is the first lever. Timings on CUDA synchronise around each part.
"""
import argparse
import functools
import statistics
import time

import torch
from torch.utils.data import DataLoader

from mmsr_kit import load_split, make_config
from mmsr_kit.config import parse_sets
from mmsr_kit.data.batches import EpochBatches, TrainWindows
from mmsr_kit.modes import build_model
from mmsr_kit.train import evaluate, make_optimizer

# Issue 19's targets, training seconds per epoch at the workshop world on this 2-core machine; validation 0.1 s.
TARGETS = {"mmsr": 1.5, "mmsr_v": 1.2, "mmsr_t": 0.8}
PARTS = ("forward", "encode", "backward", "optimizer", "data")


class Clock:
    """Seconds per named part, synchronising the device first on CUDA."""

    def __init__(self, device):
        self.device, self.seconds = device, dict.fromkeys(PARTS, 0.0)

    def now(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter()


def encode_timer(encoder, clock):
    """Hooks adding the item encoder's forward time to clock.seconds["encode"]."""
    start = {}
    encoder.register_forward_pre_hook(lambda m, a: start.__setitem__("t", clock.now()))
    encoder.register_forward_hook(lambda m, a, out: clock.seconds.__setitem__(
        "encode", clock.seconds["encode"] + clock.now() - start["t"]))


def training_setup(cfg, device="cpu"):
    """What `fit` trains with, for a benchmark to step by hand: (data, model, batches, loader, optimizer), the model
    initialised from the config's seed, the loader with the kit's collate (distinct items)."""
    data = load_split(cfg.data)
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg, data).to(device)
    windows = TrainWindows(data, cfg.train.negatives)
    batches = EpochBatches(len(windows), cfg.train.batch_size, cfg.train.seed)
    loader = DataLoader(windows, batch_sampler=batches, collate_fn=functools.partial(windows.collate_keys, distinct=True))
    return data, model, batches, loader, make_optimizer(model, cfg.train)


def profile_mode(mode, args, device):
    """One mode's epochs: a list of {part: seconds, "epoch", "valid", "steps", "items"} per epoch."""
    cfg = make_config(args.preset, overrides={"model.mode": mode, **parse_sets(args.set)})
    data, model, batches, loader, optimizer = training_setup(cfg, device)
    clock = Clock(device)
    if hasattr(model, "items"):  # IDSR's table too: its lookup is the item encoding there
        encode_timer(model.items, clock)
    epochs = []
    for epoch in range(1, args.epochs + 1):
        clock.seconds = dict.fromkeys(PARTS, 0.0)
        batches.set_epoch(epoch)
        model.train()
        items = []
        begin = last = clock.now()
        for batch in loader:
            batch = [x.to(device) if torch.is_tensor(x) else tuple(t.to(device) for t in x) for x in batch]
            items.append(len(batch[3][0]))
            t0 = clock.now()
            clock.seconds["data"] += t0 - last
            loss = model(*batch)
            t1 = clock.now()
            loss.backward()
            t2 = clock.now()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            last = clock.now()
            for part, (a, b) in {"forward": (t0, t1), "backward": (t1, t2), "optimizer": (t2, last)}.items():
                clock.seconds[part] += b - a
        train, parts = clock.now() - begin, dict(clock.seconds)  # before validation encodes the items too
        t0 = clock.now()
        evaluate(model, data, cfg, "valid")
        epochs.append({**parts, "epoch": train, "valid": clock.now() - t0, "steps": len(items),
                       "items": statistics.median(items), "catalogue": data.n_items})
    return cfg, epochs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="workshop")
    parser.add_argument("--modes", nargs="+", default=["idsr", "mmsr_t", "mmsr_v", "mmsr"])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--set", action="append", default=[])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    rows = {}
    for mode in args.modes:
        cfg, epochs = profile_mode(mode, args, device)
        rows[mode] = {key: statistics.median(e[key] for e in epochs) for key in epochs[0]}
    print(f"{args.preset}, batch {cfg.train.batch_size}, {cfg.data.n_items} items, {args.epochs} epochs (median shown), "
          f"{torch.get_num_threads()} threads, device {device}")
    print(f"{'mode':<8}{'steps':>6}{'items/step':>11}{'epoch s':>9}{'forward':>9}{'encode':>8}{'backward':>9}"
          f"{'optim':>7}{'data':>6}{'valid s':>9}{'target s':>9}")
    for mode, r in rows.items():
        target = TARGETS.get(mode)
        print(f"{mode:<8}{r['steps']:>6.0f}{r['items']:>11.0f}{r['epoch']:>9.2f}{r['forward']:>9.2f}{r['encode']:>8.2f}"
              f"{r['backward']:>9.2f}{r['optimizer']:>7.2f}{r['data']:>6.2f}{r['valid']:>9.3f}"
              f"{'-' if target is None else target:>9}")
    return rows


if __name__ == "__main__":
    main()
