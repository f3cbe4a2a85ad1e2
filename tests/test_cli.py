"""The CLI contract: `mmsr list`, `mmsr train ... --out`, the last-line JSON, clear errors."""
import json
import os
import subprocess
import sys

import pytest

from mmsr_kit.cli import main
from mmsr_kit.config import from_yaml


def test_list_prints_names_under_headings(capsys):
    main(["list"])
    out = capsys.readouterr().out.splitlines()
    for heading, name in [("datasets:", "  ml-100k"), ("sequences:", "  nextitnet"), ("modes:", "  idsr"), ("presets:", "  smoke")]:
        assert heading in out and name in out
    main(["list", "sequences"])
    assert capsys.readouterr().out.splitlines() == ["sequences:", "  gru4rec", "  nextitnet", "  sasrec"]


@pytest.mark.parametrize("argv, message", [
    (["list", "fusionz"], "unknown heading 'fusionz'"),
    (["train", "--preset", "smoke", "--set", "model.sequence=transformer"], "unknown sequence model 'transformer'"),
    (["train", "--preset", "smoke", "--set", "data.name=nowhere"], "unknown dataset 'nowhere'"),
    (["train", "--preset", "smoke", "--set", "train.batchsize=3"], "did you mean 'train.batch_size'"),
    (["train", "--preset", "smoke", "--set", "train.epochs=two"], "train.epochs expects int"),
    (["train", "--preset", "tiny"], "unknown preset 'tiny'"),
    (["train", "--preset", "smoke", "--config", "/no/such.yaml"], "No such file"),
])
def test_errors_exit_2_with_one_clear_line(capsys, argv, message):
    with pytest.raises(SystemExit) as exit:
        main(argv)
    assert exit.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_train_end_to_end_in_a_subprocess(tmp_path):
    log = tmp_path / "results.jsonl"
    cmd = [sys.executable, "-m", "mmsr_kit.cli", "train", "--preset", "smoke", "--set", "data.name=ml-100k",
           "--set", "model.mode=idsr", "--set", "model.sequence=sasrec", "--set", "train.epochs=1",
           "--out", str(tmp_path / "run"), "--results", str(log), "--quiet"]
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "MMSR_FAST": "1"}, timeout=300)
    assert done.returncode == 0, done.stderr
    metrics = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(metrics) >= {"valid", "test", "cold", "wall_time_s", "sequences_per_s", "peak_memory_mb"}
    assert metrics["test"]["n"] == 943
    assert json.loads((tmp_path / "run" / "metrics.json").read_text()) == metrics
    saved = from_yaml(tmp_path / "run" / "config.yaml")
    assert (saved.data.name, saved.model.sequence, saved.train.epochs, saved.preset) == ("ml-100k", "sasrec", 1, "smoke")
    assert (tmp_path / "run" / "model.safetensors").stat().st_size > 0
    assert json.loads(log.read_text().splitlines()[-1])["metrics"] == metrics
