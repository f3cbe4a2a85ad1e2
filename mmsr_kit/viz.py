"""Plotly figures for the notebooks; each function returns a figure so tests can inspect its data."""
import os

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots


def keep_figures_in_exports():
    """In a Jupyter kernel plotly draws through JupyterLab's extension only (the `plotly_mimetype` renderer), so a
    notebook exported to HTML (File > Save and Export, `jupyter nbconvert --to html`) shows no figure. Adding the
    `notebook` renderer puts each figure in the output as HTML too, with plotly.js inlined once per kernel (~5 MB,
    no CDN: it works offline). A renderer chosen by the user (`PLOTLY_RENDERER`, `pio.renderers.default`) stays."""
    if pio.renderers.default == "plotly_mimetype" and "PLOTLY_RENDERER" not in os.environ:
        pio.renderers.default = "plotly_mimetype+notebook"


keep_figures_in_exports()  # on import: every notebook imports this module before its first figure

FAST_LINE = ("MMSR_FAST=1: plumbing only. A small world (the smoke preset) and a few epochs check that every cell "
             "runs; the numbers below are not findings (most sit near chance). Unset MMSR_FAST for the workshop size.")


def fast_banner(fast):
    """The line a notebook prints near its top in fast mode (plain text, so every export keeps it)."""
    if fast:
        print(FAST_LINE)


def picture_facets(images, captions, cols, max_chars):
    """uint8 pictures (n, S, S, 3) in a grid of `cols` columns, each captioned (cut to `max_chars`)."""
    fig = px.imshow(images, facet_col=0, facet_col_wrap=cols, facet_col_spacing=0.01, facet_row_spacing=0.08)
    for annotation in fig.layout.annotations:  # facet captions "facet_col=k" -> the k-th caption
        text = captions[int(annotation.text.split("=")[1])]
        annotation.text = text if len(text) <= max_chars else text[: max_chars - 1] + "…"
        annotation.font.size = 9
    return fig.update_xaxes(showticklabels=False).update_yaxes(showticklabels=False)


def item_grid(dataset, items=None, n=16, cols=8, title_chars=28):
    """Pictures of `items` (default: the first n) with their titles as captions."""
    if not dataset.has_images:
        raise ValueError(f"{dataset.name} has no images")
    items = list(range(n)) if items is None else list(items)
    images = dataset.item_images(items)  # (n, S, S, 3)
    fig = picture_facets(images, dataset.items.select(items)["text"], cols, title_chars)
    fig.update_layout(title=f"{dataset.name}: items and their titles", height=170 * int(np.ceil(len(items) / cols)),
                      margin=dict(l=10, r=10, t=60, b=10))
    return fig


def new_item_neighbours(picture, title, nearest, dataset, reached=None, title_chars=28):
    """A new item's picture next to its nearest catalogue items' (`TrainedRun.nearest`'s rows, best first), each
    captioned with its title and score; the title says how many test users' top 10 it enters (`users_for`)."""
    position = {item: row for row, item in enumerate(dataset.items["item_id"])}
    rows = [position[i] for i in nearest["item_id"]]
    images = np.concatenate([picture[None], dataset.item_images(rows)]) if rows else picture[None]
    captions = [f"new: {title}", *[f"{s:.2f} · {t}" for s, t in zip(nearest["score"], nearest["title"])]]
    fig = picture_facets(images, captions, len(images), title_chars)
    users = f"; in the top 10 of {len(reached)} test users" if reached is not None else ""
    return fig.update_layout(title=f"a new item and its {len(rows)} nearest catalogue items (score: inner product)"
                             f"{users}", height=240, margin=dict(l=10, r=10, t=60, b=10))


def popularity_curve(data):
    """Training occurrences of each item, most popular first, with the cold threshold marked."""
    counts = np.sort(data.train_counts[1:])[::-1]
    cold = int(data.cold[1:].sum())
    fig = go.Figure(go.Scatter(x=np.arange(1, len(counts) + 1), y=np.maximum(counts, 0.8), mode="lines", name="items"))
    threshold = counts[len(counts) - cold] if cold else None
    if cold:
        fig.add_vrect(x0=len(counts) - cold + 1, x1=len(counts), fillcolor="steelblue", opacity=0.15, line_width=0,
                      annotation_text=f"{cold} cold items", annotation_position="top left")
    fig.update_layout(title=f"{data.dataset.name}: popularity (training occurrences per item)",
                      xaxis_title="item rank", yaxis_title="occurrences", yaxis_type="log")
    fig.layout.meta = {"cold_items": cold, "threshold_count": None if threshold is None else int(threshold)}
    return fig


def training_curves(histories, metric="ndcg@10"):
    """Loss and validation `metric` per epoch; `histories` is {run name: Run.history}."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("training loss", f"validation {metric}"))
    for i, (name, history) in enumerate(histories.items()):
        colour = px.colors.qualitative.Plotly[i % 10]
        epochs = [r["epoch"] for r in history]
        fig.add_scatter(x=epochs, y=[r["loss"] for r in history], name=name, line_color=colour, row=1, col=1)
        evaluated = [r for r in history if f"valid_{metric}" in r]
        fig.add_scatter(x=[r["epoch"] for r in evaluated], y=[r[f"valid_{metric}"] for r in evaluated], name=name,
                        line_color=colour, showlegend=False, row=1, col=2)
    fig.update_xaxes(title_text="epoch")
    return fig


def compare_bar(metrics, metric="hr@10", splits=("test", "cold")):
    """Grouped bars of `metric` per run and split; `metrics` is {run name: Run.metrics}."""
    fig = go.Figure()
    for split in splits:
        names = list(metrics)
        fig.add_bar(name=split, x=names, y=[metrics[n][split].get(metric, 0.0) for n in names])
    fig.update_layout(barmode="group", title=metric.upper(), yaxis_title=metric)
    return fig


def item_views(model, item, training=True, n=8, title_chars=40):
    """What a content item encoder sees of one item (index >= 1): n encodes in training mode
    (per-encode views: fresh titles, pictures and background noise), or the fixed evaluation view."""
    import torch

    items_module = model.items
    content = items_module.content
    items = torch.full((n,), item, dtype=torch.long, device=next(content.buffers()).device)
    views = content.pick_views(items, training)
    titles = [""] * n
    if items_module.text is not None:
        ids = content.input_ids[items, views]
        titles = items_module.text.tokenizer.batch_decode(ids, skip_special_tokens=True)
    if items_module.vision is None:
        return go.Figure(go.Table(header=dict(values=["view", "title"]), cells=dict(values=[views.tolist(), titles])))
    images = content.pictures(items, views).permute(0, 2, 3, 1).cpu().numpy()  # (n, S, S, 3)
    fig = picture_facets(images, [f"view {int(v)}: {t}" for v, t in zip(views, titles)], min(n, 8), title_chars)
    fig.update_layout(title=f"item {item}: {'training encodes' if training else 'the evaluation view'}",
                      height=200 * int(np.ceil(n / 8)), margin=dict(l=10, r=10, t=60, b=10))
    fig.layout.meta = {"views": views.tolist(), "titles": titles}
    return fig


def comparison_table(table, model="MMSR", title="Test metrics, mean ± std over seeds (bold: best, italic: second)"):
    """A Table 5 (from `mmsr_kit.compare`) as a plotly table: best bold, second best italic, MMSR's gain last."""
    from .compare import render

    text = render(table, model)
    cells = [[c.replace("**", "<b>", 1).replace("**", "</b>", 1) if c.startswith("**")
              else f"<i>{c[1:-1]}</i>" if c.startswith("_") and c.endswith("_") else c for c in text[col]]
             for col in text.columns]
    fig = go.Figure(go.Table(header={"values": ["model", *text.columns], "align": "left"},
                             cells={"values": [list(text.index), *cells], "align": "left"}))
    return fig.update_layout(title=title, height=80 + 32 * (len(text) + 1), margin={"l": 10, "r": 10, "t": 40, "b": 10})


def grouped_bars(table, groups, metric="hr@10", title=None):
    """Mean ± std of `metric` per row of a comparison table (`mmsr_kit.compare`), coloured by `groups`
    ({row label: group name}, e.g. a VLP's paradigm); rows without a group are "other"."""
    means, stds = table[(metric, "mean")], table[(metric, "std")].fillna(0.0)
    fig = go.Figure()
    for group in dict.fromkeys(groups.get(label, "other") for label in table.index):
        rows = [label for label in table.index if groups.get(label, "other") == group]
        fig.add_bar(name=group, x=rows, y=means[rows].tolist(), error_y={"type": "data", "array": stds[rows].tolist()})
    return fig.update_layout(title=title or f"{metric.upper()} (test), mean ± std over seeds", yaxis_title=metric,
                             legend_title="paradigm")


def vlp_paradigms():
    """A diagram of the three VLP paradigms (the paper's Table 6): which parts see text, picture or both."""
    panels = [
        ("two-stream, shallow fusion<br>CLIP, GroupViT",
         [("text tower", 0.05, 0.45, "#8ecae6"), ("vision tower", 0.55, 0.95, "#ffb703")], [("concatenate", 0.05, 0.95, "#e5e5e5")]),
        ("single-stream, deep fusion<br>ViLT, VisualBERT",
         [("text tokens", 0.05, 0.45, "#8ecae6"), ("patches / regions", 0.55, 0.95, "#ffb703")],
         [("one transformer over both", 0.05, 0.95, "#90be6d")]),
        ("two-stream, deep fusion<br>FLAVA",
         [("text encoder", 0.05, 0.45, "#8ecae6"), ("image encoder", 0.55, 0.95, "#ffb703")],
         [("multimodal encoder", 0.05, 0.95, "#90be6d")]),
    ]
    fig = make_subplots(rows=1, cols=3, subplot_titles=[p[0] for p in panels], horizontal_spacing=0.04)
    for col, (_, lower, upper) in enumerate(panels, start=1):
        xref, yref = ("x", "y") if col == 1 else (f"x{col}", f"y{col}")
        boxes = [(label, x0, x1, 0.1, 0.45, color) for label, x0, x1, color in lower]
        boxes += [(label, x0, x1, 0.6, 0.8, color) for label, x0, x1, color in upper]
        boxes.append(("item vector -> SASRec", 0.2, 0.8, 0.88, 0.98, "#ffffff"))
        for label, x0, x1, y0, y1, color in boxes:
            fig.add_shape(type="rect", x0=x0, x1=x1, y0=y0, y1=y1, xref=xref, yref=yref, fillcolor=color,
                          line={"color": "#555"})
            fig.add_annotation(x=(x0 + x1) / 2, y=(y0 + y1) / 2, text=label, showarrow=False, xref=xref, yref=yref)
        for x in (0.25, 0.75):
            fig.add_annotation(x=x, y=0.6, ax=x, ay=0.45, xref=xref, yref=yref, axref=xref, ayref=yref,
                               showarrow=True, arrowhead=2, text="")
        fig.add_annotation(x=0.5, y=0.88, ax=0.5, ay=0.8, xref=xref, yref=yref, axref=xref, ayref=yref,
                           showarrow=True, arrowhead=2, text="")
        fig.add_annotation(x=0.25, y=0.02, text="title", showarrow=False, xref=xref, yref=yref)
        fig.add_annotation(x=0.75, y=0.02, text="picture", showarrow=False, xref=xref, yref=yref)
    fig.update_xaxes(range=[0, 1], visible=False)
    fig.update_yaxes(range=[0, 1], visible=False)
    return fig.update_layout(height=380, showlegend=False, margin={"l": 10, "r": 10, "t": 60, "b": 10},
                             plot_bgcolor="white")


def popularity_frame(metrics, metric="hr@10"):
    """{run name: Run.metrics} as a DataFrame of runs x popularity buckets (`metric` on the test set), with
    attrs["cases"]: test cases per bucket, as `compare.popularity_table` returns; a DataFrame is returned as is."""
    if isinstance(metrics, pd.DataFrame):
        return metrics
    first = next(iter(metrics.values()))["popularity"]
    table = pd.DataFrame({name: {b: g.get(metric, 0.0) for b, g in m["popularity"].items()}
                          for name, m in metrics.items()}).T
    table.attrs["cases"] = {bucket: group["n"] for bucket, group in first.items()}
    return table


def popularity_bars(metrics, metric="hr@10", buckets=None):
    """`metric` on the test set per popularity bucket of the target (training occurrences), one bar group per
    run; `metrics` is {run name: Run.metrics} (their "popularity" entry), a DataFrame of runs x buckets
    (`compare.popularity_table`), or a list of these, drawn in order (a comparison from the log next to new runs).
    `buckets`: the buckets shown, in order (default: all). Bucket sizes in the axis labels."""
    tables = [popularity_frame(m, metric) for m in (metrics if isinstance(metrics, list) else [metrics])]
    cases = tables[0].attrs["cases"]
    table = pd.concat(tables)[list(buckets) if buckets is not None else list(tables[0].columns)]
    fig = go.Figure()
    labels = [f"{bucket}<br>({cases[bucket]} cases)" for bucket in table.columns]
    for name, row in table.iterrows():
        fig.add_bar(name=name, x=labels, y=row.fillna(0.0).tolist())
    return fig.update_layout(barmode="group", title=f"{metric.upper()} by the target's training occurrences (test)",
                             xaxis_title="training occurrences of the target item", yaxis_title=metric)


def chance_bars(groups, chance, metric="hr@10", title=None):
    """Bars of `metric` per model, one group per ranking (`groups`: {name: Series model -> value}), each with its
    chance level (`chance`: {name: value}) as a dashed line over its bars."""
    fig = go.Figure()
    for g, (name, values) in enumerate(groups.items()):
        fig.add_bar(name=name, x=[f"{model}<br>{name}" for model in values.index], y=values.tolist(),
                    marker_color=px.colors.qualitative.Plotly[g % 10])
        fig.add_scatter(x=[f"{model}<br>{name}" for model in values.index], y=[chance[name]] * len(values),
                        mode="lines", line={"dash": "dash", "color": "black"}, name=f"chance, {name}")
    return fig.update_layout(title=title or f"{metric.upper()} and chance", yaxis_title=metric)


GROUP_COLOURS = {"popular": "#4c78a8", "cold": "#f58518"}  # Fig. 4's two groups; cold drawn last, on top


def side_by_side(labels):
    """One empty map per label in a row (t-SNE axes carry no meaning: no ticks)."""
    fig = make_subplots(rows=1, cols=len(labels), subplot_titles=list(labels), horizontal_spacing=0.03)
    return fig.update_xaxes(showticklabels=False).update_yaxes(showticklabels=False)


def tsne_items(points_by_model, highlight=None, title="Items (t-SNE of item vectors): popular and cold"):
    """Fig. 4: t-SNE maps of item vectors side by side, {label: (points (N, 2), metadata from
    `embeddings.item_embeddings`)}, popular and cold items in two colours, each item's title on hover.
    `highlight`: a row of the metadata to mark with a star in every map."""
    fig = side_by_side(points_by_model)
    for col, (points, metadata) in enumerate(points_by_model.values(), start=1):
        for group, colour in GROUP_COLOURS.items():
            rows = np.flatnonzero(metadata["group"].to_numpy() == group)
            fig.add_scatter(x=points[rows, 0], y=points[rows, 1], mode="markers", name=group, legendgroup=group,
                            showlegend=col == 1, marker={"color": colour, "size": 5, "opacity": 0.75},
                            text=metadata["title"].iloc[rows].tolist(), customdata=metadata["train_count"].iloc[rows],
                            hovertemplate="%{text}<br>%{customdata} training occurrences<extra>" + group + "</extra>",
                            row=1, col=col)
        if highlight is not None:
            fig.add_scatter(x=points[[highlight], 0], y=points[[highlight], 1], mode="markers", name="selected",
                            legendgroup="selected", showlegend=col == 1, text=[metadata["title"].iloc[highlight]],
                            hovertemplate="%{text}<extra>selected</extra>", row=1, col=col,
                            marker={"color": "black", "size": 16, "symbol": "star"})
    return fig.update_layout(title=title, height=460, legend={"itemsizing": "constant"})


def tsne_users(points_by_model, title="Users and their items (t-SNE): one colour per user"):
    """Fig. 5: t-SNE maps side by side, {label: (points (n, 2), metadata from `embeddings.user_embeddings`)}: each
    user's vector (a large diamond) and the items of their history (dots, titles on hover) in the user's colour."""
    fig = side_by_side(points_by_model)
    palette = px.colors.qualitative.Plotly + px.colors.qualitative.Dark24
    for col, (points, metadata) in enumerate(points_by_model.values(), start=1):
        for u, user in enumerate(dict.fromkeys(metadata["user"])):
            for kind, marker in (("item", {"size": 6, "opacity": 0.6}),
                                 ("user", {"size": 15, "symbol": "diamond", "line": {"width": 1.5, "color": "black"}})):
                rows = np.flatnonzero((metadata["user"] == user).to_numpy() & (metadata["kind"] == kind).to_numpy())
                fig.add_scatter(x=points[rows, 0], y=points[rows, 1], mode="markers", name=f"user {user}",
                                legendgroup=str(user), showlegend=col == 1 and kind == "user",
                                marker={"color": palette[u % len(palette)], **marker},
                                text=metadata["title"].iloc[rows].tolist(),
                                hovertemplate="%{text}<extra>" + f"user {user}" + "</extra>", row=1, col=col)
    return fig.update_layout(title=title, height=460)


def sweep_bars(table, knobs, modes=None, metric="hr@10", title=None):
    """A sweep (`mmsr_kit.sweep`): mean ± std of `metric` per grid point (x), one bar per mode."""
    from .sweep import grid, run_label

    points = list(grid(knobs))
    fig = go.Figure()
    for mode in modes or [None]:
        rows = [run_label(mode, p) for p in points]
        fig.add_bar(name=mode or metric, x=points, y=table[(metric, "mean")].reindex(rows).tolist(),
                    error_y={"type": "data", "array": table[(metric, "std")].reindex(rows).fillna(0.0).tolist()})
    return fig.update_layout(barmode="group", title=title or f"{metric.upper()} (test), mean ± std over seeds",
                             yaxis_title=metric, legend_title="mode")


def sweep_heatmap(frame, metric="hr@10", title=None):
    """A two-key sweep as a heatmap (`mmsr_kit.sweep.pivot`): rows the first key's values, columns the second's."""
    x, y = [str(c) for c in frame.columns], [str(i) for i in frame.index]
    fig = go.Figure(go.Heatmap(z=frame.to_numpy(), x=x, y=y, colorscale="Blues", text=frame.round(4).to_numpy(),
                               texttemplate="%{text}", colorbar={"title": metric}))
    return fig.update_layout(title=title or f"{metric.upper()} (test, mean over seeds)",
                             xaxis={"title": frame.columns.name, "type": "category"},
                             yaxis={"title": frame.index.name, "type": "category", "autorange": "reversed"})
