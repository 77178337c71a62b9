"""pipeline.render.plots: the heatmap's upsampling by hand, and the PNGs it writes."""
import numpy as np

from pipeline.render.plots import plot_gallery, plot_heatmap, upsample_map


def test_upsampling_keeps_a_constant_and_the_order_of_cells():
    np.testing.assert_allclose(upsample_map(np.full((7, 7), 2.5), 224), 2.5, rtol=1e-6)
    up = upsample_map(np.array([[0.0, 1.0], [0.0, 1.0]]), 8)
    assert up.shape == (8, 8)
    assert (up[:, 0] == 0).all() and (up[:, -1] == 1).all()  # the cell centres' values
    assert (np.diff(up[3]) >= 0).all()  # monotone between them


def test_heatmap_and_gallery_are_pngs(tmp_path):
    rgb = np.zeros((32, 32, 3), np.uint8)
    cam = np.arange(16, dtype=np.float32).reshape(4, 4) - 8
    plot_heatmap(rgb, cam, str(tmp_path / "h.png"), "one")
    plot_gallery([("true positive", [(rgb, cam, "a")]), ("false negative", [(rgb, -cam, "b"),
                                                                          (rgb, cam, "c")])],
                 str(tmp_path / "g.png"), "two")
    for name in ("h.png", "g.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_interval_plot_puts_each_row_at_its_value(tmp_path):
    from PIL import Image

    import matplotlib.pyplot as plt
    from pipeline.render.plots import plot_intervals
    drawn = {}
    real = plt.Axes.errorbar

    def spy(ax, x, y, **kw):
        drawn.update(x=np.asarray(x), y=np.asarray(y), xerr=np.asarray(kw["xerr"]))
        return real(ax, x, y, **kw)
    plt.Axes.errorbar = spy
    try:
        plot_intervals([("a", 0.9, (0.8, 0.95)), ("b", 0.7, (0.6, 0.72))],
                       str(tmp_path / "i.png"), "AUC", "t", reference=0.9)
    finally:
        plt.Axes.errorbar = real
    np.testing.assert_allclose(drawn["x"], [0.9, 0.7])
    assert drawn["y"].tolist() == [1, 0]  # the first row on top
    np.testing.assert_allclose(drawn["xerr"], [[0.1, 0.1], [0.05, 0.02]])
    assert Image.open(tmp_path / "i.png").size[1] > 50


def test_size_curves_are_a_png(tmp_path):
    from pipeline.render.plots import plot_size_curves
    curves = {"fine-tune": [(100, 0.6, 0.55, 0.65), (1000, 0.8, 0.77, 0.83)],
              "top features": [(100, 0.7, 0.66, 0.74), (1000, 0.75, 0.72, 0.78)]}
    plot_size_curves([("fundus (different)", curves), ("CIFAR-10 (similar)", curves)],
                     str(tmp_path / "s.png"), {"fundus (different)": "AUC",
                                               "CIFAR-10 (similar)": "accuracy"})
    png = (tmp_path / "s.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000


def test_a_recipe_has_one_colour_in_every_panel(tmp_path, monkeypatch):
    """A recipe missing from the first panel does not shift the others' colours."""
    from pipeline.render import plots
    saved = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: saved.append(fig))
    point = [(10, 0.5, 0.4, 0.6), (20, 0.6, 0.5, 0.7)]
    plots.plot_size_curves([("a", {"1": point, "3": point, "4": point}),
                            ("b", {"1": point, "2": point, "3": point})], "x.png", "y")
    colours = [{line.get_label(): line.get_color() for line in ax.get_lines()}
               for ax in saved[0].axes]
    assert colours[0]["3"] == colours[1]["3"] and colours[0]["1"] == colours[1]["1"]
    assert len(set(colours[0].values()) | set(colours[1].values())) == 4
