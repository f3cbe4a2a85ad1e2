"""The one device helper: CUDA when present (bf16 autocast there), else CPU; Accelerate underneath."""
import os
import resource

import torch
from accelerate import Accelerator, DataLoaderConfiguration
from accelerate.state import AcceleratorState

from .registry import ConfigError


def use_cuda(preference="auto"):
    if preference == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device=cuda but no CUDA device is visible; use train.device=auto or cpu")
    return preference == "cuda" or (preference == "auto" and torch.cuda.is_available())


def trackers(report_to):
    """`train.report_to` -> the list Accelerate's `log_with` takes (None: no tracking); a tracker that is unknown or
    not installed is an error naming the choices."""
    from accelerate.tracking import LOGGER_TYPE_TO_CLASS, get_available_trackers

    from .registry import UnknownNameError, unknown_name_message

    names = [n.strip() for n in str(report_to).split(",") if n.strip()]
    if names in ([], ["none"]):
        return None
    if names == ["all"]:
        return ["all"]
    available = {str(t) for t in get_available_trackers()}
    for name in names:
        if name not in LOGGER_TYPE_TO_CLASS:
            raise UnknownNameError(unknown_name_message("tracker", name, ["none", "all", *LOGGER_TYPE_TO_CLASS]))
        if name not in available:
            raise ConfigError(f"tracker {name!r} is not installed (pip install {name}); installed: "
                              f"{', '.join(sorted(available)) or 'none'}")
    return names


def make_accelerator(train_cfg, logging_dir=None):
    """An Accelerator for this run, logging to `train_cfg.report_to`'s trackers under `logging_dir`; checks that a
    multi-process launch really got its processes.

    On CPU, `accelerate launch --cpu --num_processes 2` can silently start one process and a
    plain launch under torchrun can run unsynced copies: compare with torchrun's WORLD_SIZE.
    """
    cuda = use_cuda(train_cfg.device)
    if train_cfg.deterministic and cuda:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS needs it for repeatable results
    # Some CPU kernels (with several threads) differ in the last bits from run to run without this.
    torch.use_deterministic_algorithms(train_cfg.deterministic, warn_only=True)
    if int(os.environ.get("WORLD_SIZE", "1")) == 1:
        # Accelerate keeps its settings per process; a notebook that trains again with another precision
        # or device would be refused ("AcceleratorState has already been initialized"), so start afresh.
        AcceleratorState._reset_state(reset_partial_state=True)
    accelerator = Accelerator(cpu=not cuda, mixed_precision="bf16" if cuda and train_cfg.bf16 else "no",
                              dataloader_config=DataLoaderConfiguration(non_blocking=cuda),  # with pinned batches
                              log_with=trackers(train_cfg.report_to), project_dir=logging_dir)
    expected = int(os.environ.get("WORLD_SIZE", "1"))
    if accelerator.num_processes != expected:
        raise RuntimeError(
            f"launched with WORLD_SIZE={expected} but Accelerate runs {accelerator.num_processes} process(es); "
            "on CPU launch with `torchrun --nproc_per_node N -m mmsr_kit.cli train ...`"
        )
    return accelerator


def peak_memory_mb(device):
    """Peak memory of this process: allocated CUDA memory on a GPU, resident set size on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
