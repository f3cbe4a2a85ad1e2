"""The training step, old path and new side by side in one run: seconds per epoch at a preset, per mode.

    python benchmarks/step_speed.py [--preset workshop] [--modes idsr mmsr_t mmsr_v mmsr] [--steps 12]

Old: the workshop's encoders before issue 19 (text `bow`, a BERT with no blocks; vision `tiny-cnn-64`, two
convolutions of 64 channels) and torch's own dropout. New: text `bag` (one embedding_bag), vision `tiny-cnn` (a stem of
32 channels) and the kit's `Dropout` (the same masks' distribution from a faster generator). Both train through the kit's
loader, model and AdamW groups from the same seed; their steps alternate, so a busy machine slows both alike. An
epoch is the median step times the steps in an epoch; validation is one full `evaluate` on the validation users.
The last column is issue 19's target for this 2-core machine.
"""
import argparse
import statistics
import time

import torch
import torch.nn as nn

from epoch_profile import training_setup
from mmsr_kit import make_config
from mmsr_kit.config import parse_sets
from mmsr_kit.layers import Dropout
from mmsr_kit.train import evaluate

TARGETS = {"mmsr": 1.5, "mmsr_v": 1.2, "mmsr_t": 0.8}  # training seconds per epoch; validation 0.1 s
PATHS = {
    "old": {"model.text_encoder": "bow", "model.vision_encoder": "tiny-cnn-64"},
    "new": {"model.text_encoder": "bag", "model.vision_encoder": "tiny-cnn"},
}


def torch_dropout(model):
    """The kit's Dropout back to torch's nn.Dropout (the old path)."""
    for module in model.modules():
        if type(module) is Dropout:
            module.__class__ = nn.Dropout
    return model


class Trainer:
    """One path's model, optimizer and an endless stream of training batches."""

    def __init__(self, path, mode, args):
        overrides = {**PATHS[path], "model.mode": mode, **parse_sets(args.set)}
        self.cfg = make_config(args.preset, overrides=overrides)
        self.data, self.model, self.batches, self.loader, self.optimizer = training_setup(self.cfg)
        if path == "old":
            torch_dropout(self.model)
        self.stream, self.times = self._stream(), []

    def _stream(self):
        epoch = 0
        while True:
            epoch += 1
            self.batches.set_epoch(epoch)
            yield from self.loader

    def step(self):
        self.model.train()
        start = time.perf_counter()
        loss = self.model(*next(self.stream))
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.times.append(time.perf_counter() - start)
        return loss.item()

    def validation_seconds(self):
        start = time.perf_counter()
        evaluate(self.model, self.data, self.cfg, "valid")
        return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="workshop")
    parser.add_argument("--modes", nargs="+", default=["idsr", "mmsr_t", "mmsr_v", "mmsr"])
    parser.add_argument("--steps", type=int, default=12, help="timed steps per path and mode (after 2 warm-up steps)")
    parser.add_argument("--set", action="append", default=[])
    args = parser.parse_args(argv)
    rows = {}
    for mode in args.modes:
        trainers = {path: Trainer(path, mode, args) for path in PATHS}
        for _ in range(2):  # warm-up: first-call allocations
            for t in trainers.values():
                t.step()
        for t in trainers.values():
            t.times.clear()
        for _ in range(args.steps):
            for t in trainers.values():
                t.step()
        steps = len(trainers["new"].batches)
        rows[mode] = {path: {"epoch": statistics.median(t.times) * steps, "valid": t.validation_seconds()}
                      for path, t in trainers.items()}
    cfg = trainers["new"].cfg
    print(f"{args.preset}, {cfg.data.n_items} items, batch {cfg.train.batch_size}, {steps} steps an epoch, "
          f"{torch.get_num_threads()} threads; old: bow + tiny-cnn-64 + torch dropout, new: bag + tiny-cnn + kit dropout")
    print(f"{'mode':<8}{'old s/epoch':>12}{'new s/epoch':>12}{'speed-up':>9}{'target':>8}{'old valid s':>12}"
          f"{'new valid s':>12}")
    for mode, r in rows.items():
        target = TARGETS.get(mode, "-")
        print(f"{mode:<8}{r['old']['epoch']:>12.2f}{r['new']['epoch']:>12.2f}{r['old']['epoch'] / r['new']['epoch']:>8.1f}x"
              f"{target:>8}{r['old']['valid']:>12.3f}{r['new']['valid']:>12.3f}")
    return rows


if __name__ == "__main__":
    main()
