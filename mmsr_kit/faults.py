"""Named points where a run can die, so the kill-matrix tests stop a run at each of them deterministically.

`MMSR_CRASH_AT=POINT[:N]` ends the process the N-th time (default: the first) the run reaches POINT, with
`os._exit(137)`: as a SIGKILL would, nothing is flushed and no cleanup runs. `MMSR_CRASH_HOW=raise` raises
`SimulatedCrash` instead (a BaseException, so no `except Exception` catches it), for tests in one process.
"""
import collections
import os

POINTS = {
    "step": "inside a training step, after the backward pass and before the optimizer step",
    "between_steps": "after a step (and its step checkpoint, if any), before the next one",
    "after_epoch_checkpoint": "right after an epoch's checkpoint is in place",
    "validation": "during an epoch's validation",
    "checkpoint_write": "while a checkpoint is being written (its weights written, the rest not)",
    "final_evaluation": "during the final evaluation (test done, cold not)",
    "after_metrics": "after metrics.json is written, before the results log line",
}
_reached = collections.Counter()


class SimulatedCrash(BaseException):
    """Raised at a crash point under MMSR_CRASH_HOW=raise."""


def reset():
    """Forget how often each point was reached (each run counts from the start)."""
    _reached.clear()


def crash_point(name):
    """Die here if MMSR_CRASH_AT names this point and this is the time it counts to."""
    spec = os.environ.get("MMSR_CRASH_AT")
    if not spec:
        return
    point, _, nth = spec.partition(":")
    if point not in POINTS or not (nth or "1").isdigit():
        raise ValueError(f"MMSR_CRASH_AT={spec!r}: expected POINT[:N], POINT one of {', '.join(POINTS)}")
    if point != name:
        return
    _reached[name] += 1
    if _reached[name] == int(nth or 1):
        if os.environ.get("MMSR_CRASH_HOW") == "raise":
            raise SimulatedCrash(f"{name} ({_reached[name]})")
        os._exit(137)
