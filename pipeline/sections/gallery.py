"""Where the network looks: class-activation maps of test images it got right and
wrong."""
import numpy as np

from ..evidence.claims import referable


#: the cases the gallery shows, and how many of each
GALLERY = (("true positive", True, True), ("false negative", True, False),
           ("false positive", False, True))


GALLERY_PER_KIND = 3


def gallery_cases(score, truth, cut, seed=0):
    """{kind: positions} of up to GALLERY_PER_KIND test images of each GALLERY kind,
    chosen with a fixed seed (sorted)."""
    rng = np.random.RandomState(seed)
    decided = np.asarray(score) >= cut
    out = {}
    for kind, positive, flagged in GALLERY:
        where = np.flatnonzero((np.asarray(truth) == positive) & (decided == flagged))
        pick = rng.choice(where, min(GALLERY_PER_KIND, len(where)), replace=False) \
            if len(where) else []
        out[kind] = sorted(int(i) for i in pick)
    return out


def gallery_section(runs, runs_root, stem):
    """Where the network looks: class-activation maps of scenario 4's first run on test
    images it got right and wrong, at its operating point (GoogLeNet runs only)."""
    if not runs or runs[0]["config"].get("network", "googlenet") != "googlenet":
        return []
    from models.cam import compile_cam, referable_rows
    from models.model_io import load_model

    from ..recipe.config import num_classes
    from ..data.dataset import centre_crop, open_split
    from ..render.plots import plot_gallery
    run = runs[0]
    config, p = run["config"], run["predictions"]
    truth = referable(p, config)
    cut = run["evaluation"]["operating_point"]["cut"]
    cases = gallery_cases(p["score"], truth, cut)
    chosen = [i for kind, _, _ in GALLERY for i in cases[kind]]
    if not chosen:
        return []
    spec, input_shape, net = load_model(str(run["dir"] / "model.npz"))
    cam = compile_cam(net, spec, referable_rows(num_classes(config), config.get("threshold", 2)))
    data = open_split(run["env"]["data"], "test", config)
    position = {name: k for k, name in enumerate(data.names)}
    at = [position[str(p["names"][i])] for i in chosen]
    maps = dict(zip(chosen, cam(data.batch(at, input_shape[1]))[0]))
    rgbs = dict(zip(chosen, centre_crop(data.images(at), input_shape[1])))
    data.close()
    rows = [(kind, [(rgbs[i], maps[i], "%s: P %.2f, level %d" % (
        p["names"][i], p["score"][i], p["levels"][i])) for i in cases[kind]])
        for kind, _, _ in GALLERY if cases[kind]]
    figure = "%s-gallery.png" % stem
    plot_gallery(rows, str(runs_root / figure), "%s: referable-class maps at the cut %.3f"
                 % (run["dir"].name, cut))
    return ["", "## Where the network looks", "",
            "Class-activation maps (Zhou et al. 2016) of the referable class of `%s` on test "
            "images, %d of each kind chosen with a fixed seed: the map's mean plus a constant of "
            "the image (a binary head's: its bias; five levels: `models/cam.py`) is exactly "
            "the network's log-odds of referable DR, so red areas raise it and blue areas "
            "lower it (each panel on its own scale). P is P(referable), the level the image's grade."
            % (run["dir"].name, GALLERY_PER_KIND), "",
            "![Where scenario 4 looks: true positives, false negatives, false positives](%s)"
            % figure]


def section(report):
    return gallery_section(report.by_scenario.get("4"), report.runs_root, report.stem)
