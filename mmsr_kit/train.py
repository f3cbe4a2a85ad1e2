"""Training: BCE with one negative per positive (or k), AdamW with item-encoder and downstream groups,
the paper's schedule, validation every N epochs, test once with the best checkpoint."""
import copy
import functools
import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Optional

import torch
from accelerate.utils import set_seed
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .config import Config
from .data import SplitData, load_split
from .checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint, write_durably
from .data.batches import EpochBatches, TrainWindows, derived_seed
from .data.split import popularity_groups
from .device import make_accelerator, peak_memory_mb, trackers
from .evaluate import full_ranking_metrics, parse_metric
from .faults import crash_point, reset as reset_crash_points
from .modes import build_model
from .paths import results_path
from .results import append_result, is_logged
from .transfer import id_keys, init_from

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


def make_optimizer(model, train_cfg):
    """AdamW over `param_groups`, fused (one kernel for all parameters: ~4x faster than the per-tensor loop on a CPU,
    where the optimizer step over a text encoder's word table is a visible share of an epoch)."""
    return torch.optim.AdamW(param_groups(model, train_cfg), fused=True)


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


def new_totals(device):
    """Running sums of an epoch (kept on the device: no host sync inside the step)."""
    zero = lambda: torch.zeros((), device=device)  # noqa: E731
    return {"loss": zero(), "grad_norm": zero(), "bad_step": torch.full((), -1, device=device), "seen": 0, "steps": 0}


def seed_step(seed, step, process):
    """Seed every random generator a step draws from (dropout, per-encode views, MAE masks) from (run seed, global
    step, process) alone: a run resumed at any step boundary draws what an uninterrupted run draws, whatever ran
    before (the loader's start, validation, a cache fill), with no random state to save."""
    set_seed(derived_seed(seed, step, process) % 2**32)


def train_epoch(model, loader, optimizer, scheduler, accelerator, clip=None, first_step=0, skip=0, totals=None,
                after_step=None, seed=0):
    """One pass over the training windows; returns the epoch's running sums (`new_totals`).

    Resuming inside an epoch: `skip` batches are already done (the loader yields them again, nothing runs) and
    `totals` are the sums so far. `after_step(step, totals)` runs after each step (checkpoints). `first_step`: the
    global step number before this epoch (step seeds; naming a step whose loss was not finite)."""
    model.train()
    t = totals or new_totals(accelerator.device)
    clip = float(clip) if clip else math.inf  # the norm is measured either way
    for step, batch in enumerate(loader, start=1):  # inputs, targets, negatives, their distinct items
        if step <= skip:
            continue
        seed_step(seed, first_step + step, accelerator.process_index)
        with accelerator.autocast():
            loss = model(*batch)
        accelerator.backward(loss)
        crash_point("step")
        norm = accelerator.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        loss = loss.detach()
        bad = (t["bad_step"] < 0) & ~torch.isfinite(loss)
        t["bad_step"] = torch.where(bad, torch.full_like(t["bad_step"], first_step + step), t["bad_step"])
        t["loss"] += loss
        t["grad_norm"] += norm.detach().float() if torch.is_tensor(norm) else norm
        t["seen"] += len(batch[0])
        t["steps"] += 1
        if after_step is not None:
            after_step(step, t)
        crash_point("between_steps")
    return t


def weight_sums(model, accelerator):
    """The sum of every weight and saved buffer (BatchNorm's running statistics), in float64, from each process
    (one value per process)."""
    total = sum((t.detach().double().sum() for t in model.state_dict().values() if t.is_floating_point()),
                torch.zeros((), dtype=torch.float64))
    return [float(x) for x in accelerator.gather(total.to(accelerator.device).reshape(1))]


def share_buffers(model, accelerator):
    """Process 0's saved buffers (BatchNorm's running statistics) to every process, before each validation. Each
    process updates its own in its forward passes (DDP sends process 0's before each one, not after the last), so
    without this the processes would validate, keep as best and test slightly different models, none of them the
    one saved. Training is unchanged: the next forward gets process 0's buffers from DDP anyway."""
    if accelerator.num_processes > 1:
        saved = model.state_dict(keep_vars=True)
        for name, buffer in model.named_buffers():
            if name in saved and buffer.is_floating_point():
                torch.distributed.broadcast(buffer.data, src=0)


class TrainingDiverged(FloatingPointError):
    """The training loss became NaN or infinite: the CLI prints the message (step, last good checkpoint)."""


def check_finite(t, epoch, run_dir):
    step = int(t["bad_step"])
    if step >= 0:
        latest = latest_checkpoint(run_dir) if run_dir else None
        where = f"the last good checkpoint is {latest}" if latest else "no checkpoint was written (no --out)"
        raise TrainingDiverged(f"the training loss became non-finite at step {step} (epoch {epoch}); {where}. "
                               "Lower train.lr or set train.grad_clip")


def evaluate(model, data, cfg, which, accelerator=None, by_popularity=False):
    """Metrics of split `which`; with `by_popularity` also "groups": the same per popularity bucket of the target
    (training occurrences 0, 1-4, 5-9, 10-49, 50+)."""
    evalset = {"valid": data.valid, "test": data.test, "cold": data.cold_test, "cold_test": data.cold_test_only,
               "cold_paper": data.cold_paper, "new": data.new_test, "new_among_new": data.new_among_new}[which]
    groups = popularity_groups(data.train_counts, evalset) if by_popularity else None
    return full_ranking_metrics(model, evalset, data.n_items, cfg.eval.ks, cfg.eval.batch_size, accelerator,
                                groups=groups)


def tracking_dir(cfg, out_dir):
    """Where the trackers of `train.report_to` write: OUT/logs, or (no --out) beside the results log."""
    if trackers(cfg.train.report_to) is None:
        return None
    if out_dir:
        return Path(out_dir) / "logs"
    return results_path().parent / "logs" / f"{time.strftime('%Y%m%d-%H%M%S')}-{cfg.hash()[:8]}"


def hparams(cfg):
    """The config as the flat scalar dict trackers take (TensorBoard's hparams): lists and None as text."""
    flat = {}
    for section, values in cfg.to_dict().items():
        for key, value in (values.items() if isinstance(values, dict) else [(None, values)]):
            name = f"{section}.{key}" if key else section
            flat[name] = value if isinstance(value, (bool, int, float, str)) else str(value)
    return flat


def tracked(row):
    """An epoch's history row as tracker scalars: train/loss, train/lr, train/grad_norm, valid/hr@10 ..."""
    return {(f"valid/{k[6:]}" if k.startswith("valid_") else f"train/{k}"): v for k, v in row.items() if k != "epoch"}


def epoch_cap():
    """`MMSR_EPOCH_CAP=N` (a timing aid, `benchmarks/notebook_times.py`): every run stops after at most N epochs,
    its config (and learning-rate schedule) unchanged, so `epochs_run` < `train.epochs` tells what was cut."""
    value = os.environ.get("MMSR_EPOCH_CAP", "")
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"MMSR_EPOCH_CAP must be a whole number of epochs >= 1, got {value!r}")
    return int(value)


@dataclass
class Progress:
    """How far a run has come. Every checkpoint keeps it, so a resumed run goes on from exactly here."""
    history: list = field(default_factory=list)  # one row per epoch: loss, gradient norm, lr, validation metrics
    best_score: float = -1.0  # of train.metric on the validation users
    best_epoch: int = 0
    stale: int = 0  # validations since the best one
    stopped: bool = False  # early stop (train.patience)
    train_time: float = 0.0
    valid_time: float = 0.0
    sequences_seen: int = 0
    epoch_times: list = field(default_factory=list)  # each epoch's training and validation

    def validated(self, epoch, score):
        """Note a validation's score; True when it is the best so far."""
        if score > self.best_score:
            self.best_score, self.best_epoch, self.stale = score, epoch, 0
            return True
        self.stale += 1
        return False


def restore(out_dir, model, optimizer, scheduler, accelerator, steps):
    """Load `out_dir`'s latest checkpoint into the model, optimizer and scheduler. Returns (progress, best_state,
    epoch to start at, steps of it already done, the running sums of those steps), or None without a checkpoint."""
    path = latest_checkpoint(out_dir, check=True)
    if path is None:
        log.warning("%s has no checkpoint yet: training from the start", out_dir)
        return None
    weights, best_state, optimizer_state, state = load_checkpoint(path, accelerator.device)
    accelerator.unwrap_model(model).load_state_dict(weights)
    optimizer.load_state_dict(optimizer_state)
    scheduler.load_state_dict(state["scheduler"])
    progress = Progress(**{f.name: state[f.name] for f in fields(Progress) if f.name in state})
    epoch, step, totals = state["epoch"], state["step"], None
    if step < steps:  # died inside an epoch: this process's sums of the steps done
        totals = new_totals(accelerator.device)
        mine = {key: value[accelerator.process_index] for key, value in state["totals"].items()}
        totals.update(seen=int(mine["seen"]), steps=step)
        for key in ("loss", "grad_norm"):
            totals[key] += mine[key]
    log.info("resuming %s from %s: epoch %d, after step %d of %d", out_dir, path.name, epoch, step, steps)
    return (progress, best_state, epoch + 1, 0, None) if step == steps else (progress, best_state, epoch, step, totals)


def fit(cfg: Config, out_dir=None, results=None, progress=True, resume=False):
    """Train and evaluate `cfg`; write `out_dir` (config.yaml at the start; checkpoints during training; then
    model.safetensors, history.json, and metrics.json last) and append a line to the results log `results` (a path; False to
    skip). `resume`: continue from `out_dir`'s latest checkpoint, to the very metrics an uninterrupted run gives.
    Returns a Run. A finished run (its metrics.json written) resumed trains nothing: it returns what it saved, and
    writes its results-log line if a crash came between the two."""
    reset_crash_points()
    if resume and is_finished(out_dir):
        return finished_run(cfg, out_dir, results)
    t_start = time.perf_counter()
    logging_dir = tracking_dir(cfg, out_dir)
    accelerator = make_accelerator(cfg.train, logging_dir)
    if logging_dir:
        accelerator.init_trackers("mmsr", config=hparams(cfg))
    set_seed(cfg.train.seed)
    data = load_split(cfg.data)
    model = build_model(cfg, data)
    transferred = None
    if cfg.train.init_from and not resume:  # a resumed run has its own weights in its checkpoint
        transferred = init_from(model, cfg.train.init_from, cfg.train.init_parts, cfg.model)
    if cfg.train.compile:
        compile_parts(model)
    if out_dir and accelerator.is_main_process:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        cfg.save(Path(out_dir) / "config.yaml")
    done = Progress()
    cap = epoch_cap()
    last_epoch = cfg.train.epochs if cap is None else min(cfg.train.epochs, cap)
    if last_epoch < cfg.train.epochs:
        log.warning("MMSR_EPOCH_CAP=%d: stopping after %d of %d epochs", cap, last_epoch, cfg.train.epochs)
    if getattr(model, "trainable", True):
        model, done = train_loop(cfg, model, data, accelerator, out_dir, resume, last_epoch,
                                 progress and accelerator.is_main_process)

    sums = weight_sums(model, accelerator)
    if len(set(sums)) > 1:  # gradients are averaged every step, so the processes' weights must agree exactly
        raise RuntimeError(f"the {accelerator.num_processes} processes hold different weights (sums {sums}): "
                           "they did not train in sync")

    metrics = {}
    for split in ("valid", "test", "cold", "cold_test", "cold_paper"):  # cold: validation and test positions
        metrics[split] = evaluate(model, data, cfg, split, accelerator, by_popularity=split == "test")
        if split == "test":
            crash_point("final_evaluation")
    metrics.update({
        "popularity": metrics["test"].pop("groups"),  # test metrics per popularity bucket of the target
        "best_epoch": done.best_epoch,
        "epochs_run": len(done.history),
        "complete": done.stopped or last_epoch == cfg.train.epochs,  # False: cut by MMSR_EPOCH_CAP (--resume goes on)
        "wall_time_s": time.perf_counter() - t_start,
        "train_time_s": done.train_time,
        "valid_time_s": done.valid_time,  # the per-epoch validations
        "epoch_times_s": done.epoch_times,  # each epoch's training and validation
        "sequences_per_s": done.sequences_seen / done.train_time if done.train_time else None,
        "peak_memory_mb": peak_memory_mb(accelerator.device),
        "device": accelerator.device.type,
        "processes": accelerator.num_processes,
        "weight_sums": sums,  # one per process, equal: the processes trained in sync
        "data": {**data.stats, **data.dataset.notes},  # with what was counted after the split (pictures)
    })
    if len(data.new_test):  # new items ranked among all items, and among the new items only
        metrics.update({which: evaluate(model, data, cfg, which, accelerator) for which in ("new", "new_among_new")})
    if transferred is not None:
        metrics["init_from"] = {**transferred.summary(), "by_part": transferred.by_part(id_keys(model))}
    if logging_dir:
        accelerator.log({f"{split}/{m}": v for split in ("test", "cold") for m, v in metrics[split].items() if m != "n"},
                        step=len(done.history))
        accelerator.end_training()
        metrics["logs"] = str(logging_dir)
    run = Run(cfg, metrics, done.history, model, data, Path(out_dir) if out_dir else None, accelerator.is_main_process)
    if accelerator.is_main_process:
        if out_dir:
            save_run(run)
            crash_point("after_metrics")
        if results is not False:
            append_result(cfg, metrics, path=results)
    return run


def train_loop(cfg, model, data, accelerator, out_dir, resume_run, last_epoch, show_bar):
    """The training loop of `fit`: epochs of steps, a validation every train.eval_every epochs (the best weights
    kept), a checkpoint after each epoch (and every train.checkpoint_steps steps); from `out_dir`'s latest checkpoint
    when `resume_run`. Returns (the unwrapped model with the best weights, its Progress)."""
    windows = TrainWindows(data, cfg.train.negatives)
    batches = EpochBatches(len(windows), cfg.train.batch_size, cfg.train.seed)
    loader = DataLoader(windows, batch_sampler=batches, collate_fn=functools.partial(windows.collate_keys, distinct=True),
                        num_workers=cfg.train.num_workers, pin_memory=accelerator.device.type == "cuda",
                        persistent_workers=cfg.train.num_workers > 0)
    optimizer = make_optimizer(model, cfg.train)
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    steps = len(loader)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg.train, steps))
    kind, k = parse_metric(cfg.train.metric, cfg.eval.ks)
    done, best_state, start_epoch, skip, totals = Progress(), None, 1, 0, None
    if resume_run:
        done, best_state, start_epoch, skip, totals = restore(
            out_dir, model, optimizer, scheduler, accelerator, steps) or (done, best_state, start_epoch, skip, totals)

    def checkpoint(epoch, step, t, running):
        """Save weights, best weights, optimizer and Progress after `step` of `epoch` (`running`: seconds of
        training not yet in done.train_time); every process sends its running sums `t`."""
        if not out_dir:
            return
        sums = torch.tensor([[float(t["loss"]), float(t["grad_norm"]), t["seen"]]], dtype=torch.float64,
                            device=accelerator.device)
        sums = accelerator.gather(sums).tolist()  # (processes, 3): each process's sums so far
        if accelerator.is_main_process:
            state = {**asdict(done), "train_time": done.train_time + running, "epoch": epoch, "step": step,
                     "scheduler": scheduler.state_dict(),
                     "totals": dict(zip(("loss", "grad_norm", "seen"), map(list, zip(*sums))))}
            save_checkpoint(out_dir, (epoch - 1) * steps + step, accelerator.unwrap_model(model).state_dict(),
                            best_state, optimizer, state)
        accelerator.wait_for_everyone()

    bar = tqdm(range(start_epoch, last_epoch + 1), desc=f"{cfg.model.mode}/{cfg.model.sequence}", unit="epoch",
               disable=not show_bar)
    for epoch in bar:
        if done.stopped:
            break
        loader.set_epoch(epoch)  # Accelerate's loader sets its sampler's epoch to its own count at each pass
        batches.set_epoch(epoch)  # (and not through the per-process shards of a multi-process run)
        t0 = time.perf_counter()

        def after_step(step, t):
            if cfg.train.checkpoint_steps and step % cfg.train.checkpoint_steps == 0 and step < steps:
                check_finite(t, epoch, out_dir)  # never a checkpoint of weights a non-finite loss has touched
                checkpoint(epoch, step, t, time.perf_counter() - t0)

        t = train_epoch(model, loader, optimizer, scheduler, accelerator, cfg.train.grad_clip, (epoch - 1) * steps,
                        skip, totals, after_step, cfg.train.seed)
        skip, totals = 0, None
        done.train_time += time.perf_counter() - t0
        check_finite(t, epoch, out_dir)
        done.sequences_seen += t["seen"]
        mean_loss = float(accelerator.reduce(t["loss"], "mean")) / max(1, t["steps"])
        grad_norm = float(accelerator.reduce(t["grad_norm"], "mean")) / max(1, t["steps"])
        row = {"epoch": epoch, "loss": mean_loss, "grad_norm": grad_norm, "lr": scheduler.get_last_lr()[-1]}
        if epoch % cfg.train.eval_every == 0 or epoch == last_epoch:
            t_valid = time.perf_counter()
            share_buffers(accelerator.unwrap_model(model), accelerator)  # one model validated; best_state alike
            valid = evaluate(accelerator.unwrap_model(model), data, cfg, "valid", accelerator)
            done.valid_time += time.perf_counter() - t_valid
            crash_point("validation")
            row.update({f"valid_{m}": v for m, v in valid.items() if m != "n"})
            if done.validated(epoch, valid[f"{kind}@{k}"]):
                best_state = copy.deepcopy(accelerator.unwrap_model(model).state_dict())
            bar.set_postfix(loss=f"{mean_loss:.4f}", **{f"{kind}@{k}": f"{valid[f'{kind}@{k}']:.4f}"})
        done.history.append(row)
        done.epoch_times.append(time.perf_counter() - t0)  # training and validation
        accelerator.log(tracked(row), step=epoch)
        if cfg.train.patience is not None and done.stale >= cfg.train.patience:
            log.info("early stop at epoch %d: no better %s@%d for %d validations", epoch, kind, k, done.stale)
            done.stopped = True
        checkpoint(epoch, steps, t, 0.0)  # the epoch's time is counted already
        crash_point("after_epoch_checkpoint")
    model = accelerator.unwrap_model(model)
    model.load_state_dict(best_state)
    return model, done


def save_run(run):
    """Write the run's folder; metrics.json last (atomically): its presence says the run is finished."""
    out = run.out_dir
    out.mkdir(parents=True, exist_ok=True)
    run.config.save(out / "config.yaml")
    state = {k: v.detach().cpu().contiguous() for k, v in run.model.state_dict().items()}
    save_file(state, str(out / "model.safetensors"))
    write_durably(out / "history.json", json.dumps(run.history, indent=2))
    write_durably(out / "metrics.json", json.dumps(run.metrics, indent=2))


def is_finished(out_dir):
    """Whether a run folder holds a finished run: its metrics.json, not cut short by MMSR_EPOCH_CAP."""
    path = Path(out_dir) / "metrics.json"
    return path.is_file() and json.loads(path.read_text()).get("complete", True) is True


def finished_run(cfg, out_dir, results=None):
    """The Run a finished run folder holds (metrics, history, best weights), nothing trained again; its line goes to
    the results log `results` if it is not there yet (a crash after metrics.json, before the log)."""
    out = Path(out_dir)
    metrics = json.loads((out / "metrics.json").read_text())
    history = json.loads((out / "history.json").read_text())
    log.warning("%s is finished (metrics.json is there): nothing to train; its metrics are those saved", out)
    data = load_split(cfg.data)
    model = build_model(cfg, data)
    model.load_state_dict(load_file(str(out / "model.safetensors")))
    main = int(os.environ.get("RANK", "0")) == 0  # under torchrun, rank 0 alone writes and prints
    if main and results is not False and not is_logged(cfg, metrics, path=results):
        append_result(cfg, metrics, path=results)
    return Run(cfg, metrics, history, model, data, out, main)
