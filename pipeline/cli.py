"""``python -m pipeline COMMAND``: the command line of every stage."""
import argparse
import os
import logging
import sys

from models.caffemodel import CaffeModelError
from models.device import DeviceError, require
from models.fileio import WRITE_ERRORS, Busy
from models.googlenet import UnknownLayer

from .errors import InputError


def cmd_forward(args):
    from .learn.inference import forward
    outputs = forward(args.weights, args.blob, args.out, args.layers.split(","),
                      allow_missing=args.allow_missing)
    for name, value in outputs.items():
        print("%s %s" % (name, "x".join(map(str, value.shape))))
    return 0


def cmd_classify(args):
    from .learn.inference import classify, default_synsets
    synsets = args.synsets or default_synsets(args.weights)
    results, errors = classify(args.weights, args.images, synsets, top=args.top,
                               allow_missing=args.allow_missing)
    for path, top in results:
        print(path)
        for index, label, prob in top:
            print("  %.4f  %4d  %s" % (prob, index, label))
    for line in errors:
        print("error: " + line, file=sys.stderr)
    return 1 if errors else 0


def cmd_device(args):
    import json
    from models.device import describe
    require()
    print(json.dumps(describe()))
    return 0


def cmd_download_weights(args):
    from .download import download_weights
    print(download_weights(args.out))
    return 0


def cmd_download(args):
    from .download import download_kaggle
    print(download_kaggle(args.out, test=not args.train_only))
    return 0


def cmd_preprocess(args):
    from .preprocess import preprocess
    preprocess(args.data, args.out, size=args.size, lcn=args.lcn, seed=args.seed,
               workers=args.workers)
    return 0


def cmd_synthetic(args):
    from .data.synthetic import make_dataset
    rows = make_dataset(args.out, patients=args.patients, width=args.width, height=args.height,
                        seed=args.seed)
    print("%s: %d generated images" % (args.out, len(rows)))
    return 0


def cmd_train(args):
    from .data.dataset import data_classes
    from .recipe.config import load_scenario
    from .train import train
    config = load_scenario(args.scenario, args.set, classes=data_classes(args.data)
                           if os.path.isfile(args.data) else None)
    run_dir = train(config, args.data, args.weights, args.runs, reuse=args.reuse, name=args.name,
                    reuse_from=args.reuse_from)
    if run_dir is None:
        return 130
    print(run_dir)
    return 0


def cmd_evaluate(args):
    from .evaluate import evaluate
    from .evidence.referral import check_measure
    from .referral import check_uncertainty, evaluate_referral
    if args.uncertainty:  # its bad input refused before any image is read
        check_uncertainty(args.run, args.data, args.uncertainty)
        check_measure(args.measure)
    evaluate(args.run, args.data, tta=args.tta, rule=args.operating_point,
             resamples=args.resamples, reuse=args.reuse)
    if args.uncertainty:
        evaluate_referral(args.run, args.data, args.uncertainty, tta=args.tta,
                          rule=args.operating_point, resamples=args.resamples, reuse=args.reuse,
                          measure=args.measure)
    return 0


def cmd_report(args):
    from .render.readme import section_named, update_readme
    from .report import write_report
    section = section_named(args.readme_section) if args.readme_section else None
    path = write_report(args.runs, args.data, resamples=args.resamples)
    if args.readme:
        update_readme(args.readme, path.with_suffix(".md"), section)
    print(path)
    return 0


def cmd_cv(args):
    from .cv import cross_validate
    done = cross_validate(args.scenario, args.set, args.data, args.weights, args.runs,
                          folds=args.folds, tta=args.tta, rule=args.operating_point,
                          resamples=args.resamples, uncertainty=args.uncertainty,
                          measure=args.measure,
                          reuse_from=args.reuse_from)
    return 0 if done is not None else 130


def cmd_fourcases(args):
    from .fourcases import finish_sweep, grid_of, plan, run
    if args.finish:
        return 0 if finish_sweep(args.finish) is not None else 1
    recorded = {"grid": args.grid, "sizes": args.sizes, "folds": args.folds,
                "seeds": args.seeds, "scenarios": args.scenarios.split() if args.scenarios
                else None, "data_similar": args.data_similar,
                "data_different": args.data_different, "resamples": args.resamples,
                "datasets": args.datasets.split() if args.datasets else None,
                "keep": args.keep and os.path.abspath(args.keep)}
    grid = grid_of(recorded)
    if args.plan_only:
        print(plan(grid, args.weights, args.runs)[1])
        return 0
    sweep = None
    if args.sweep:
        sweep = {"args": recorded, "device": args.device, "cpus": args.cpus, "mem": args.mem,
                 "time": args.time, "limit": args.limit, "partition": args.partition}
    done = run(grid, args.weights, args.runs, summarise_only=args.summarise_only,
               resamples=args.resamples, sweep=sweep, keep=args.keep)
    return 0 if done is not None or args.sweep else 130


def cmd_predict(args):
    from .predict import predict_files
    out, scored, skipped, rate = predict_files(args.run, args.paths, args.out, args.heatmaps,
                                               uncertainty=args.uncertainty, refer=args.refer,
                                               measure=args.measure)
    print("predict: %d images scored, %d files skipped, %.1f img/s%s; %s" % (
        scored, skipped, rate, " with heatmaps in %s" % args.heatmaps if args.heatmaps else "",
        out))
    return 1 if skipped else 0


def cmd_kaggle_test(args):
    from .kaggle_test import kaggle_test
    out, failed = kaggle_test(args.run, args.data, args.solution, chunk=args.chunk)
    print("kaggle-test: %s%s" % (out / "submission.csv", (", " + str(out / "score.json"))
                                 if args.solution else ""))
    return 1 if failed else 0


def cmd_reproduce(args):
    from .evidence.claims import CLAIM_SCENARIOS
    from .reproduce import plan, reproduce
    scenarios = args.scenario.replace(",", " ").split() if args.scenario else CLAIM_SCENARIOS
    if args.plan:
        print(plan(scenarios, args.set, args.data, args.seeds or [None], args.tta,
                   args.plan, args.cv, args.runs, args.weights)[1])
        return 0
    done = reproduce(scenarios, args.set, args.data,
                     args.weights, args.runs,
                     args.seeds or [None],
                     tta=args.tta, rule=args.operating_point, resamples=args.resamples)
    if done is None:
        return 130
    print("report: %s" % done[1])
    return 0


def cmd_sweep(args):
    from . import sweep
    engine = dict(device=args.device, cpus=args.cpus, mem=args.mem, time=args.time,
                  limit=args.limit, partition=args.partition, reuse_from=args.reuse_from,
                  rule=getattr(args, "operating_point", ("sensitivity", 0.87)))
    if args.step == "plan" and args.ambiguities:
        from .ambiguities import plan as plan_ambiguities
        plan = plan_ambiguities(args.ambiguities, args.seeds, args.data, args.images,
                                args.weights, args.runs, args.set, tta=args.tta, **engine)
        print("%s: %d tasks planned" % (plan["runs"], len(plan["tasks"])))
    elif args.step == "plan":
        from .evidence.claims import CLAIM_SCENARIOS
        scenarios = CLAIM_SCENARIOS if args.scenarios == "claims" else args.scenarios.split()
        plan = sweep.make_plan(scenarios, args.folds, args.seeds, args.data,
                               args.weights, args.runs, args.set, tta=args.tta, **engine)
        print("%s: %d tasks planned" % (plan["runs"], len(plan["tasks"])))
    else:
        getattr(sweep, args.step)(args.runs)
    return 0


def seed_list(text):
    """``0,1,2`` -> [0, 1, 2]; empty -> []."""
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("expected comma-separated integers, got %r" % text)


def operating_point(text):
    """``sensitivity:0.87`` or ``youden`` -> (rule, target)."""
    rule, _, target = text.partition(":")
    if rule == "youden" and not target:
        return ("youden", None)
    try:
        if rule == "sensitivity" and 0 < float(target) <= 1:
            return ("sensitivity", float(target))
    except ValueError:
        pass
    raise argparse.ArgumentTypeError("expected sensitivity:S (0 < S <= 1) or youden, got %r" % text)


def add_statistics(p):
    p.add_argument("--tta", action="store_true", help="average the four rotations")
    p.add_argument("--operating-point", type=operating_point, default=("sensitivity", 0.87),
                   help="how the decision threshold is chosen on the validation split: "
                        "sensitivity:0.87 (highest specificity at that sensitivity) or youden")
    p.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples")


def add_engine(p):
    """The settings of a sweep's engine (local make -jN, or SLURM)."""
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--cpus", type=int, default=2, help="SLURM: CPUs per task")
    p.add_argument("--mem", default="8G", help="SLURM: memory per task")
    p.add_argument("--time", default="04:00:00", help="SLURM: time limit per task")
    p.add_argument("--limit", type=int, default=0, help="SLURM: tasks at once (0: no limit)")
    p.add_argument("--partition")


def add_training(p):
    p.add_argument("--scenario", default="4")
    p.add_argument("--data", required=True, help="preprocessed .h5")
    p.add_argument("--weights", help=".caffemodel with the pre-trained weights")
    p.add_argument("--runs", default="runs")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. epochs=20 or solver.base_lr=0.001")


ALLOW_MISSING = ("accept a .caffemodel that lacks some of GoogLeNet's layers (they start from "
                 "Caffe's fillers); without it such a file is an error")


def add_measure(p):
    p.add_argument("--measure", default="entropy", choices=("entropy", "sd"),
                   help="the uncertainty that refers: the predictive entropy of the mean "
                        "P(referable) (default) or the passes' or seeds' sd (Leibig 2017)")


def parser():
    p = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    f = sub.add_parser("forward", help="run GoogLeNet on an input blob, save Caffe blobs")
    f.add_argument("--weights", required=True, help=".caffemodel (V1 or V2)")
    f.add_argument("--blob", required=True,
                   help="N x 3 x 224 x 224 float32 .npy, BGR 0-255 minus mean (104, 117, 123)")
    f.add_argument("--out", required=True, help=".npz, one array per blob")
    f.add_argument("--layers", default="loss3/classifier,prob",
                   help="comma-separated Caffe layer/blob names")
    f.add_argument("--allow-missing", action="store_true", help=ALLOW_MISSING)
    f.set_defaults(func=cmd_forward)

    c = sub.add_parser("classify", help="top-5 ImageNet classes with Caffe's preprocessing")
    c.add_argument("--weights", required=True)
    c.add_argument("--synsets", help="synset_words.txt (default: beside the weights)")
    c.add_argument("--top", type=int, default=5)
    c.add_argument("--allow-missing", action="store_true", help=ALLOW_MISSING)
    c.add_argument("images", nargs="+")
    c.set_defaults(func=cmd_classify)

    dv = sub.add_parser("device", help="the device Theano runs on (DEVICE=cpu|cuda), or why "
                                       "it cannot be used (exit 2)")
    dv.set_defaults(func=cmd_device)

    w = sub.add_parser("download-weights", help="fetch bvlc_googlenet.caffemodel")
    w.add_argument("--out", default="weights/bvlc_googlenet.caffemodel")
    w.set_defaults(func=cmd_download_weights)

    d = sub.add_parser("download", help="fetch the Kaggle 2015 DR training and test sets")
    d.add_argument("--out", default="data/kaggle")
    d.add_argument("--train-only", action="store_true", help="not the test set (its images "
                   "are only for make kaggle-test)")
    d.set_defaults(func=cmd_download)

    pp = sub.add_parser("preprocess", help="images + labels -> HDF5 (crop, resize, split)")
    pp.add_argument("--data", required=True, help="dir with images and labels.csv/trainLabels.csv")
    pp.add_argument("--out", required=True, help="the .h5 file to write")
    pp.add_argument("--size", type=int, default=256)
    pp.add_argument("--lcn", action="store_true", help="local contrast normalisation")
    pp.add_argument("--seed", type=int, default=0, help="seed of the patient split")
    pp.add_argument("--workers", type=int, default=None)
    pp.set_defaults(func=cmd_preprocess)

    g = sub.add_parser("synthetic", help="generate a fundus-like dataset (offline demo)")
    g.add_argument("--out", required=True)
    g.add_argument("--patients", type=int, default=60)
    g.add_argument("--width", type=int, default=768)
    g.add_argument("--height", type=int, default=512)
    g.add_argument("--seed", type=int, default=0)
    g.set_defaults(func=cmd_synthetic)

    t = sub.add_parser("train", help="train a scenario (scenarios/*.toml)")
    add_training(t)
    t.add_argument("--reuse", action="store_true",
                   help="return a finished run of the same config, data and weights as it is")
    t.add_argument("--name", help="the run directory's name under --runs (default: "
                                  "SCENARIO-TIMESTAMP)")
    t.add_argument("--reuse-from", action="append", default=[], metavar="DIR",
                   help="with --reuse, look for the finished run in this folder of runs too "
                        "(repeatable)")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="metrics with intervals and plots of a run: its test "
                                        "split, or all of another dataset (external)")
    e.add_argument("--run", required=True)
    e.add_argument("--data", required=True, help="preprocessed .h5: the run's own, or another")
    e.add_argument("--reuse", action="store_true",
                   help="keep an evaluation made after the model with the same settings")
    e.add_argument("--uncertainty", metavar="mc:T|ensemble",
                   help="also refer the most uncertain test images: T MC-dropout passes, or "
                        "the seeds of the run's recipe (pipeline.learn.uncertainty); on other "
                        "data, at the run's own validation cuts")
    add_measure(e)
    add_statistics(e)
    e.set_defaults(func=cmd_evaluate)

    r = sub.add_parser("report", help="the reproduction report of every evaluated run of a "
                                      "dataset (HTML + Markdown)")
    r.add_argument("--runs", default="runs")
    r.add_argument("--data", required=True, help="the preprocessed .h5 the runs trained on")
    r.add_argument("--resamples", type=int, default=2000)
    r.add_argument("--readme", help="also rewrite the results section of this README")
    r.add_argument("--readme-section", metavar="WORDS", help="only the README's results "
                   "section whose title holds WORDS (e.g. 'four cases'), the others kept")
    r.set_defaults(func=cmd_report)

    v = sub.add_parser("cv", help="k-fold cross-validation by patient of a scenario")
    add_training(v)
    v.add_argument("--folds", type=int, default=5)
    v.add_argument("--uncertainty", metavar="mc:T|ensemble",
                   help="also the referral of the pooled out-of-fold images")
    add_measure(v)
    v.add_argument("--reuse-from", action="append", default=[], metavar="DIR",
                   help="a fold reuses a finished run of its config found in this folder "
                        "too (make reproduce CV=k's runs/cv-kK; repeatable)")
    add_statistics(v)
    v.set_defaults(func=cmd_cv)

    fc = sub.add_parser("fourcases", help="the four transfer-learning cases: both datasets x "
                        "scenarios x training sizes x folds (scenarios/fourcases.toml)")
    fc.add_argument("--grid", help="the grid file (default scenarios/fourcases.toml)")
    fc.add_argument("--sizes", help="0.125,0.25,0.5,1 (fractions) or 2,5,10 (images per "
                    "class or level): every scenario at these sizes")
    fc.add_argument("--folds", type=int)
    fc.add_argument("--seeds", type=seed_list, default=[])
    fc.add_argument("--scenarios", help="space-separated: only these of the grid")
    fc.add_argument("--data-similar", help="a folder of images + labels.csv instead of the "
                    "grid's similar data")
    fc.add_argument("--data-different", help="the same, for the different data")
    fc.add_argument("--datasets", help="space-separated names of the grid's datasets: only "
                                       "these (e.g. similar)")
    fc.add_argument("--weights")
    fc.add_argument("--runs", default="runs")
    fc.add_argument("--keep", metavar="DIR", help="keep every evaluated run's evidence (no "
                    "model) in DIR, and restore the grid's runs from it (results/fourcases)")
    fc.add_argument("--plan-only", action="store_true", help="only the plan line")
    fc.add_argument("--summarise-only", action="store_true",
                    help="train nothing: the summary of the cells done")
    fc.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples")
    fc.add_argument("--finish", metavar="SWEEP_JSON", help="the finish step of a sweep "
                    "written by --sweep: evaluate its runs, write the summary")
    fc.add_argument("--sweep", action="store_true", help="write the grid as a sweep plan in "
                    "RUNS/fourcases (make -jN or a SLURM job array) instead of running it")
    add_engine(fc)
    fc.set_defaults(func=cmd_fourcases)

    sw = sub.add_parser("sweep", help="scenarios x folds x seeds, here or as a SLURM job array")
    sw.add_argument("step", choices=("plan", "prepare", "finish", "submit"))
    sw.add_argument("--runs", default="runs/sweep")
    sw.add_argument("--scenarios", default="1 3 4 scratch",
                    help="space-separated, or claims: every scenario the claims compare")
    sw.add_argument("--reuse-from", action="append", default=[], metavar="DIR",
                    help="a task reuses a finished run of its config found in this folder of "
                         "runs too (repeatable)")
    sw.add_argument("--folds", type=int, default=0, help="0: the file's own split")
    sw.add_argument("--seeds", type=seed_list, default=[0])
    sw.add_argument("--data")
    sw.add_argument("--weights")
    sw.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    sw.add_argument("--tta", action="store_true")
    sw.add_argument("--operating-point", type=operating_point, default=("sensitivity", 0.87),
                    help="as evaluate's: every run of the sweep is evaluated with it")
    add_engine(sw)
    sw.add_argument("--ambiguities", metavar="TOML", help="plan the grid of the readings of "
                    "this file (scenarios/ambiguities.toml) instead of scenarios x folds x seeds")
    sw.add_argument("--images", metavar="DIR", help="--ambiguities: the images folder --data "
                    "was preprocessed from (for readings that preprocess it another way)")
    sw.set_defaults(func=cmd_sweep)

    pr = sub.add_parser("predict", help="screen new fundus images with a trained, evaluated "
                                        "run: a CSV, and heatmaps")
    pr.add_argument("--run", required=True)
    pr.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders")
    pr.add_argument("--out", help="the CSV (default: predictions-<run>.csv)")
    pr.add_argument("--heatmaps", metavar="DIR",
                    help="a PNG per image: the referable class's activation map over it")
    pr.add_argument("--uncertainty", metavar="mc:T|ensemble",
                    help="score with MC dropout or the seeds' ensemble, and add uncertainty "
                         "and refer_to_grader (needs make evaluate UNCERTAINTY=... first)")
    pr.add_argument("--refer", type=float, default=0.2,
                    help="the fraction of validation images whose uncertainty would be "
                         "referred sets the referral cut (default 0.2)")
    add_measure(pr)
    pr.set_defaults(func=cmd_predict)

    kt = sub.add_parser("kaggle-test", help="Kaggle's test set: submission.csv, and its score "
                                            "with the solution file")
    kt.add_argument("--run", required=True)
    kt.add_argument("--data", required=True, help="the folder of test images (or its parent)")
    kt.add_argument("--solution", help="retinopathy_solution.csv (image,level,Usage)")
    kt.add_argument("--chunk", type=int, default=256, help=argparse.SUPPRESS)
    kt.set_defaults(func=cmd_kaggle_test)

    rp = sub.add_parser("reproduce", help="train (or reuse) each scenario per seed, evaluate, "
                                          "report")
    add_training(rp)
    rp.set_defaults(scenario=None)  # every scenario of the claims
    rp.add_argument("--plan", metavar="LABELS", help=argparse.SUPPRESS)  # make's first line
    rp.add_argument("--cv", type=int, default=0, help=argparse.SUPPRESS)  # the plan's folds
    rp.add_argument("--seeds", type=seed_list, default=[],
                    help="comma-separated seeds (default: the scenario's)")
    add_statistics(rp)
    rp.set_defaults(func=cmd_reproduce)
    return p


#: the commands that run Theano functions: DEVICE=cuda must be usable before they start
COMPUTING = {"forward", "classify", "train", "evaluate", "cv", "reproduce", "predict",
             "kaggle-test"}


def main(argv=None):
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        if args.command in COMPUTING:
            require()
        return args.func(args)
    except (InputError, CaffeModelError, DeviceError, UnknownLayer) as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    except Busy as e:
        print("error: %s" % e, file=sys.stderr)
        return 75  # EX_TEMPFAIL: nothing is wrong with the input, try again later
    except OSError as e:
        if e.errno not in WRITE_ERRORS:
            raise
        # atomic writes leave the previous file (checkpoint, results) as it was
        print("error: %s: %s; nothing was left half-written: free space (or fix the disk) and "
              "run the same command again" % (e.filename or "writing", e.strerror), file=sys.stderr)
        return 2
