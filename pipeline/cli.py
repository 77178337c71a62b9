"""``python -m pipeline COMMAND``: the command line of every stage."""
import argparse
import logging
import sys

from models.caffemodel import CaffeModelError

from .errors import InputError


def cmd_forward(args):
    from .inference import forward
    outputs = forward(args.weights, args.blob, args.out, args.layers.split(","))
    for name, value in outputs.items():
        print("%s %s" % (name, "x".join(map(str, value.shape))))
    return 0


def cmd_classify(args):
    from .inference import classify, default_synsets
    synsets = args.synsets or default_synsets(args.weights)
    results, errors = classify(args.weights, args.images, synsets, top=args.top)
    for path, top in results:
        print(path)
        for index, label, prob in top:
            print("  %.4f  %4d  %s" % (prob, index, label))
    for line in errors:
        print("error: " + line, file=sys.stderr)
    return 1 if errors else 0


def cmd_download_weights(args):
    from .download import download_weights
    print(download_weights(args.out))
    return 0


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
    f.set_defaults(run=cmd_forward)

    c = sub.add_parser("classify", help="top-5 ImageNet classes with Caffe's preprocessing")
    c.add_argument("--weights", required=True)
    c.add_argument("--synsets", help="synset_words.txt (default: beside the weights)")
    c.add_argument("--top", type=int, default=5)
    c.add_argument("images", nargs="+")
    c.set_defaults(run=cmd_classify)

    w = sub.add_parser("download-weights", help="fetch bvlc_googlenet.caffemodel")
    w.add_argument("--out", default="weights/bvlc_googlenet.caffemodel")
    w.set_defaults(run=cmd_download_weights)
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        return args.run(args)
    except (InputError, CaffeModelError) as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    except KeyError as e:
        print("error: %s" % e.args[0], file=sys.stderr)
        return 2
