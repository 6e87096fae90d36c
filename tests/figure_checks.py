"""Reading figures back as a reader of the saved file sees them, for the tests of `plots` and `explore`."""


def texts_outside_the_canvas(fig):
    """The parts of `fig` that a reader of the saved file would see clipped: each axes whose drawn extent (its tick
    labels, axis labels, title and annotations as drawn) leaves the canvas, and each figure-level text that does, as
    (name, extent) pairs."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    width, height = fig.bbox.width, fig.bbox.height
    boxes = [(ax.get_title() or ax.get_ylabel() or f"axes {i}", ax.get_tightbbox(renderer))
             for i, ax in enumerate(fig.axes) if ax.get_visible()]
    boxes += [(text.get_text(), text.get_window_extent(renderer)) for text in fig.texts if text.get_text().strip()]
    return [(name, tuple(round(v) for v in box.extents)) for name, box in boxes
            if box is not None and box.x0 < -0.5 or box.y0 < -0.5 or box.x1 > width + 0.5 or box.y1 > height + 0.5]
