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
