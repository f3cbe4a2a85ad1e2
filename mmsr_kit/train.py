"""Training: BCE with one negative per positive, AdamW with item-encoder and downstream groups,
the paper's schedule, validation every N epochs, test once with the best checkpoint."""
import copy
import functools
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
from accelerate.utils import set_seed
from safetensors.torch import save_file
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .config import Config
from .data import SplitData, load_split
from .data.batches import TrainWindows
from .device import make_accelerator, peak_memory_mb
from .evaluate import full_ranking_metrics, parse_metric
from .modes import build_model
from .results import append_result

log = logging.getLogger(__name__)


@dataclass
class Run:
    """What a training run returns: its config, metrics, per-epoch history, the best model and the data."""

    config: Config
    metrics: dict
    history: list
    model: torch.nn.Module
    data: SplitData
    out_dir: Optional[Path] = None
    main_process: bool = True  # False on the other ranks of a multi-process launch


def param_groups(model, train_cfg):
    """AdamW groups: pretrained item encoders (encoder_lr, encoder_weight_decay) and the rest
    (lr; weight_decay on matrices, none on biases, norms and positions)."""
    items = getattr(model, "items", None)
    encoder = {id(p) for p in (items.encoder_parameters() if items is not None else [])}
    groups = {"encoder": [], "decay": [], "no_decay": []}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if id(p) in encoder:
            groups["encoder"].append(p)
        elif p.dim() >= 2 and "position" not in name:
            groups["decay"].append(p)
        else:
            groups["no_decay"].append(p)
    t = train_cfg
    return [
        {"params": groups["encoder"], "lr": t.encoder_lr, "weight_decay": t.encoder_weight_decay, "name": "encoder"},
        {"params": groups["decay"], "lr": t.lr, "weight_decay": t.weight_decay, "name": "decay"},
        {"params": groups["no_decay"], "lr": t.lr, "weight_decay": 0.0, "name": "no_decay"},
    ]


def lr_lambda(train_cfg, steps_per_epoch):
    """Constant, then linear decay to final_lr_ratio from `decay_after` (default 80% of the epochs)."""
    total = train_cfg.epochs * steps_per_epoch
    start_epoch = train_cfg.decay_after if train_cfg.decay_after is not None else int(0.8 * train_cfg.epochs)
    start = min(start_epoch * steps_per_epoch, total)

    def factor(step):
        if step < start or total == start:
            return 1.0
        return 1.0 - (1.0 - train_cfg.final_lr_ratio) * min(1.0, (step - start) / (total - start))

    return factor


def compile_parts(model, **options):
    """torch.compile, in place (parameter names unchanged), the parts with fixed code paths: the sequence encoder
    and the fusion. Item encoders stay eager: their cached-prefix hooks change what runs from step to step."""
    parts = [getattr(model, "sequence", None), getattr(getattr(model, "items", None), "fusion", None)]
    for part in filter(None, parts):
        part.compile(**options)  # options: torch.compile's (backend=..., mode=...)
    return model


def train_epoch(model, loader, optimizer, scheduler, accelerator):
    """One pass over the training windows; returns (mean loss, sequences seen by this process)."""
    model.train()
    loss_sum = torch.zeros((), device=accelerator.device)
    seen = 0
    for batch in loader:  # inputs, targets, negatives, and their distinct items (see TrainWindows.collate)
        with accelerator.autocast():
            loss = model(*batch)
        accelerator.backward(loss)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        loss_sum += loss.detach()  # summed on the device: no host sync inside the step
        seen += len(batch[0])
    return float(accelerator.reduce(loss_sum, "mean")) / max(1, len(loader)), seen


def evaluate(model, data, cfg, which, accelerator=None):
    evalset = {"valid": data.valid, "test": data.test, "cold": data.cold_test}[which]
    return full_ranking_metrics(model, evalset, data.n_items, cfg.eval.ks, cfg.eval.batch_size, accelerator)


def fit(cfg: Config, out_dir=None, results=None, progress=True):
    """Train and evaluate `cfg`; write `out_dir` (config.yaml, metrics.json, history.json, model.safetensors)
    and append a line to the results log `results` (a path; False to skip). Returns a Run."""
    t_start = time.perf_counter()
    accelerator = make_accelerator(cfg.train)
    set_seed(cfg.train.seed)
    data = load_split(cfg.data)
    model = build_model(cfg, data)
    if cfg.train.compile:
        compile_parts(model)
    history = []
    kind, k = parse_metric(cfg.train.metric, cfg.eval.ks)
    train_time, sequences_seen, best_epoch = 0.0, 0, 0

    if getattr(model, "trainable", True):
        windows = TrainWindows(data)
        loader = DataLoader(windows, batch_size=cfg.train.batch_size, shuffle=True,
                            collate_fn=functools.partial(windows.collate, distinct=True),
                            num_workers=cfg.train.num_workers, pin_memory=accelerator.device.type == "cuda",
                            persistent_workers=cfg.train.num_workers > 0)
        optimizer = torch.optim.AdamW(param_groups(model, cfg.train))
        model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg.train, len(loader)))
        best_score, best_state, stale = -1.0, None, 0
        bar = tqdm(range(1, cfg.train.epochs + 1), desc=f"{cfg.model.mode}/{cfg.model.sequence}", unit="epoch",
                   disable=not (progress and accelerator.is_main_process))
        for epoch in bar:
            t0 = time.perf_counter()
            mean_loss, seen = train_epoch(model, loader, optimizer, scheduler, accelerator)
            train_time += time.perf_counter() - t0
            sequences_seen += seen
            if not math.isfinite(mean_loss):
                raise FloatingPointError(f"the training loss became {mean_loss} in epoch {epoch}; lower train.lr")
            row = {"epoch": epoch, "loss": mean_loss, "lr": scheduler.get_last_lr()[-1]}
            if epoch % cfg.train.eval_every == 0 or epoch == cfg.train.epochs:
                valid = evaluate(accelerator.unwrap_model(model), data, cfg, "valid", accelerator)
                row.update({f"valid_{m}": v for m, v in valid.items() if m != "n"})
                score = valid[f"{kind}@{k}"]
                if score > best_score:
                    best_score, best_epoch, stale = score, epoch, 0
                    best_state = copy.deepcopy(accelerator.unwrap_model(model).state_dict())
                else:
                    stale += 1
                bar.set_postfix(loss=f"{mean_loss:.4f}", **{f"{kind}@{k}": f"{score:.4f}"})
            history.append(row)
            if cfg.train.patience is not None and stale >= cfg.train.patience:
                log.info("early stop at epoch %d: no better %s@%d for %d validations", epoch, kind, k, stale)
                break
        model = accelerator.unwrap_model(model)
        model.load_state_dict(best_state)

    metrics = {split: evaluate(model, data, cfg, split, accelerator) for split in ("valid", "test", "cold")}
    metrics.update({
        "best_epoch": best_epoch,
        "epochs_run": len(history),
        "wall_time_s": time.perf_counter() - t_start,
        "train_time_s": train_time,
        "sequences_per_s": sequences_seen / train_time if train_time else None,
        "peak_memory_mb": peak_memory_mb(accelerator.device),
        "device": accelerator.device.type,
        "processes": accelerator.num_processes,
        "data": data.stats,
    })
    run = Run(cfg, metrics, history, model, data, Path(out_dir) if out_dir else None, accelerator.is_main_process)
    if accelerator.is_main_process:
        if out_dir:
            save_run(run)
        if results is not False:
            append_result(cfg, metrics, path=results)
    return run


def save_run(run):
    out = run.out_dir
    out.mkdir(parents=True, exist_ok=True)
    run.config.save(out / "config.yaml")
    (out / "metrics.json").write_text(json.dumps(run.metrics, indent=2))
    (out / "history.json").write_text(json.dumps(run.history, indent=2))
    state = {k: v.detach().cpu().contiguous() for k, v in run.model.state_dict().items()}
    save_file(state, str(out / "model.safetensors"))
