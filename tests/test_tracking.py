"""Experiment tracking (`--report-to tensorboard`): what TensorBoard reads back is the run's own history."""
import pytest

from mmsr_kit import fit
from mmsr_kit.registry import ConfigError


def scalars(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    found = {}
    for events in folder.rglob("events.out.tfevents.*"):
        acc = EventAccumulator(str(events))
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            found.setdefault(tag, []).extend((e.step, e.value) for e in acc.Scalars(tag))
    return found


def test_tensorboard_logs_losses_metrics_and_learning_rates(smoke_config, tmp_path):
    pytest.importorskip("tensorboard")
    run = fit(smoke_config(train__epochs=2, train__report_to="tensorboard"), out_dir=tmp_path, results=False,
              progress=False)
    logged = scalars(tmp_path / "logs")
    assert run.metrics["logs"] == str(tmp_path / "logs")
    for tag, key in (("train/loss", "loss"), ("train/lr", "lr"), ("train/grad_norm", "grad_norm"),
                     ("valid/hr@10", "valid_hr@10"), ("valid/ndcg@10", "valid_ndcg@10")):
        assert [step for step, _ in logged[tag]] == [1, 2]
        assert [value for _, value in logged[tag]] == pytest.approx([row[key] for row in run.history], rel=1e-6)
    assert logged["test/hr@10"] == [(2, pytest.approx(run.metrics["test"]["hr@10"], rel=1e-6))]
    assert (tmp_path / "logs" / "mmsr").is_dir() and list((tmp_path / "logs").rglob("hparams.yml"))


def test_no_tracking_by_default_and_bad_trackers_are_clear_errors(smoke_config, tmp_path):
    run = fit(smoke_config(train__epochs=1), out_dir=tmp_path, results=False, progress=False)
    assert "logs" not in run.metrics and not (tmp_path / "logs").exists()
    with pytest.raises(ConfigError, match="unknown tracker 'tensorbord'.*did you mean 'tensorboard'"):
        smoke_config(train__report_to="tensorbord")
    with pytest.raises(ConfigError, match="tracker 'mlflow' is not installed"):
        smoke_config(train__report_to="mlflow")
