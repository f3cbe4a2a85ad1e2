"""Widget panels: the button calls the same function a cell calls, with the controls' values."""
import ipywidgets as w

from mmsr_kit.registry import ConfigError
from mmsr_kit.widgets import Panel, dropdown, mask_ratio_slider


def test_button_calls_the_action_with_the_control_values():
    calls = []
    panel = Panel({"fusion": dropdown(["concat", "gate"], "gate"), "epochs": w.IntSlider(value=3)},
                  lambda **kw: calls.append(kw) or len(calls))
    panel.controls["epochs"].value = 5
    panel.button.click()
    assert calls == [{"fusion": "gate", "epochs": 5}] and panel.returned == [1]
    assert panel.values() == {"fusion": "gate", "epochs": 5}
    assert not panel.button.disabled and panel.status.value == "done"


def test_a_config_error_is_shown_not_raised():
    def bad(**_):
        raise ConfigError("model.mask_ratio applies to MAE encoders only")

    panel = Panel({}, bad)
    panel.button.click()
    assert "MAE encoders only" in panel.status.value and panel.returned == [] and not panel.button.disabled


def test_mask_ratio_slider_follows_the_vision_encoder():
    vision = dropdown(["tiny-cnn", "tiny-mae"], "tiny-mae")
    slider = mask_ratio_slider(vision, value=0.5)
    assert not slider.disabled and slider.value == 0.5
    vision.value = "tiny-cnn"
    assert slider.disabled and slider.value == 0.0  # the knob means nothing for a CNN
    vision.value = "tiny-mae"
    assert not slider.disabled


def test_popularity_bars_show_every_bucket_per_run(smoke_config):
    from mmsr_kit import fit, viz

    run = fit(smoke_config(train__epochs=1), results=False, progress=False)
    fig = viz.popularity_bars({"IDSR": run.metrics, "again": run.metrics})
    assert [bar.name for bar in fig.data] == ["IDSR", "again"]
    assert len(fig.data[0].x) == 5 and "(" in fig.data[0].x[0]
    assert list(fig.data[0].y) == [g.get("hr@10", 0.0) for g in run.metrics["popularity"].values()]
    assert sum(g["n"] for g in run.metrics["popularity"].values()) == run.metrics["test"]["n"]


def test_enable_when_follows_the_leader():
    from mmsr_kit.widgets import enable_when

    mode = dropdown(["mmsr", "mmsr_t", "mmsr_v"], "mmsr")
    text = enable_when(dropdown(["bow", "tiny-bert"], "tiny-bert"), mode, lambda m: m != "mmsr_v")
    visual = enable_when(dropdown(["region", "grid"], "grid"), mode, lambda m: m == "mmsr", off="region")
    assert not text.disabled and not visual.disabled and visual.value == "grid"
    mode.value = "mmsr_v"
    assert text.disabled and text.value == "tiny-bert"  # no `off`: the value stays
    assert visual.disabled and visual.value == "region"
    mode.value = "mmsr"
    assert not text.disabled and not visual.disabled


def test_offline_names_leave_out_hub_models():
    from mmsr_kit.encoders import TEXT_ENCODERS, VISION_ENCODERS
    from mmsr_kit.encoders.vlp import VLP_ENCODERS
    from mmsr_kit.widgets import offline_names

    text, vision, vlp = (offline_names(r) for r in (TEXT_ENCODERS, VISION_ENCODERS, VLP_ENCODERS))
    assert {"bow", "tiny-bert", "minilm"} <= set(text) and not {"bert", "roberta", "electra"} & set(text)
    assert {"tiny-cnn", "tiny-vit", "tiny-mae", "efficientnet-lite0"} <= set(vision)
    assert not {"mae", "resnet50", "swin", "vit"} & set(vision)
    assert vlp and all(name.startswith("tiny-") for name in vlp)


def test_popularity_bars_join_a_table_and_new_runs_and_pick_buckets(smoke_config):
    from mmsr_kit import fit, viz

    run = fit(smoke_config(train__epochs=1), results=False, progress=False)
    table = viz.popularity_frame({"from the log": run.metrics})
    assert viz.popularity_frame(table) is table
    fig = viz.popularity_bars([table, {"new": run.metrics}], buckets=["0", "1-4"])
    assert [bar.name for bar in fig.data] == ["from the log", "new"]
    assert [x.split("<br>")[0] for x in fig.data[1].x] == ["0", "1-4"]
    assert list(fig.data[1].y) == [run.metrics["popularity"][b].get("hr@10", 0.0) for b in ("0", "1-4")]
