import os
import tempfile
from pathlib import Path

import pytest

# Offline by default: a stray hub call fails fast instead of hanging; runs log to a temp file.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("MMSR_RESULTS", str(Path(tempfile.mkdtemp(prefix="mmsr-results-")) / "results.jsonl"))

DATA = Path(__file__).parent / "data"


@pytest.fixture
def tiny_dir():
    return DATA / "tiny"


@pytest.fixture
def smoke_config():
    from mmsr_kit import make_config

    def make(**overrides):
        return make_config("smoke", overrides={k.replace("__", "."): v for k, v in overrides.items()})

    return make
