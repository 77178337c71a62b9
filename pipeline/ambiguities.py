"""What the post leaves unsaid: the readings of its ambiguous sentences
(``scenarios/ambiguities.toml``) as a one-factor-at-a-time grid of runs.

The file names a ``scenario`` (4, the DR case) and its ``[[ambiguity]]`` tables;
each holds a quote of the post, why it is ambiguous, and two or more
``[[ambiguity.reading]]`` tables whose ``set`` are config overrides (as ``--set``
takes them), whose ``preprocess = { lcn = true }`` asks for a separately
preprocessed copy of the data, or whose ``evaluate = { tta = false }`` evaluates the
default's own runs another way (a view of each run, nothing trained). The first reading of each is the default: it must
be what the scenario already does, so that every other reading changes exactly
one thing from one shared default run. ``partners = true``: the reading also
applies to the other scenarios of the post's claims (1, 2, 3, scratch), so that
a claim compares like with like. ``[[note]]`` tables are ambiguities with nothing
to run (the report states them).

``plan`` turns the file into sweep tasks (``pipeline.sweep`` runs them: reuse,
SLURM arrays, resume); ``robustness`` reads the finished runs back for the report.
"""
import json
import re
import tomllib
from pathlib import Path

import h5py

from models.fileio import sha1_of

from .data.labels import find_inputs
from .errors import InputError
from .evidence.robustness import partners, reading_of, scenarios_of
from .recipe.config import flatten, load_scenario
from .sweep import write_plan

AMBIGUITY_KEYS = {"name", "quote", "why", "partners", "reading"}
READING_KEYS = {"name", "set", "preprocess", "evaluate"}
PREPROCESS_KEYS = {"lcn"}
EVALUATE_KEYS = {"tta"}


def override_text(key, value):
    """``key=value`` as ``--set`` takes it (JSON's numbers, strings, lists and booleans
    are TOML's too)."""
    return "%s=%s" % (key, json.dumps(value))


def load(path):
    """The ambiguities file as {"scenario", "ambiguities": [{name, quote, why, partners,
    readings: [{name, overrides, lcn}]}], "notes": [{name, quote, why}]}; its shape
    checked (one line naming the table and key), not yet its overrides (``check``)."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise InputError("%s: %s" % (path, e))

    def fail(where, problem):
        raise InputError("%s: %s: %s" % (path, where, problem))

    unknown = set(raw) - {"scenario", "ambiguity", "note"}
    if unknown:
        fail(sorted(unknown)[0], "unknown key (scenario, [[ambiguity]], [[note]])")
    if not isinstance(raw.get("scenario"), str):
        fail("scenario", "missing (the scenario whose readings are run, e.g. \"4\")")
    out = {"scenario": raw["scenario"], "ambiguities": [], "notes": []}
    names = set()
    for kind, tables in (("ambiguity", raw.get("ambiguity", [])), ("note", raw.get("note", []))):
        for n, table in enumerate(tables):
            where = "%s %d" % (kind, n + 1)
            name = table.get("name")
            if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9]*", name):
                fail(where, "name %r is not one lower-case word (it names the runs)" % (name,))
            if name in names:
                fail(where, "name %r is used twice" % name)
            names.add(name)
            where = "%s %r" % (kind, name)
            allowed = AMBIGUITY_KEYS if kind == "ambiguity" else {"name", "quote", "why"}
            for key in sorted(set(table) - allowed):
                fail(where, "%s: unknown key (%s)" % (key, ", ".join(sorted(allowed))))
            for key in ("quote", "why"):
                if not isinstance(table.get(key), str):
                    fail(where, "%s: missing or not a string" % key)
            item = {"name": name, "quote": table["quote"], "why": table["why"]}
            if kind == "note":
                out["notes"].append(item)
                continue
            if not isinstance(table.get("partners", False), bool):
                fail(where, "partners: expected true or false")
            readings = table.get("reading", [])
            if len(readings) < 2:
                fail(where, "fewer than two [[ambiguity.reading]] tables (the first is the "
                     "default)")
            item.update(partners=table.get("partners", False),
                        readings=[_reading(r, "%s, reading %d" % (where, k + 1), fail)
                                  for k, r in enumerate(readings)])
            out["ambiguities"].append(item)
    return out


def _reading(table, where, fail):
    for key in sorted(set(table) - READING_KEYS):
        fail(where, "%s: unknown key (%s)" % (key, ", ".join(sorted(READING_KEYS))))
    if not isinstance(table.get("name"), str):
        fail(where, "name: missing or not a string")
    settings, prep = table.get("set", {}), table.get("preprocess", {})
    evaluation = table.get("evaluate", {})
    if not all(isinstance(t, dict) for t in (settings, prep, evaluation)):
        fail(where, "set, preprocess and evaluate are tables ({ key = value })")
    for key in sorted(set(prep) - PREPROCESS_KEYS):
        fail(where, "preprocess.%s: unknown key (lcn)" % key)
    if not isinstance(prep.get("lcn", False), bool):
        fail(where, "preprocess.lcn: expected true or false")
    for key in sorted(set(evaluation) - EVALUATE_KEYS):
        fail(where, "evaluate.%s: unknown key (tta)" % key)
    if "tta" in evaluation and not isinstance(evaluation["tta"], bool):
        fail(where, "evaluate.tta: expected true or false")
    if evaluation and (settings or prep):
        fail(where, "evaluate: a reading of how runs are evaluated changes nothing else "
             "(no set or preprocess beside it)")
    return {"name": table["name"], "lcn": prep.get("lcn", False), "evaluate": evaluation,
            "overrides": [override_text(k, v) for k, v in sorted(flatten(settings).items())]}


def cells(spec):
    """Every (ambiguity or None, reading index, scenario) the grid runs: the default
    (None, 0) of the scenario and of its partners, then each other reading of each
    ambiguity, on the scenario and, where ``partners``, on each partner too."""
    out = [(None, 0, s) for s in [spec["scenario"]] + partners(spec["scenario"])]
    for amb in spec["ambiguities"]:
        for k in range(1, len(amb["readings"])):
            out += [(amb["name"], k, s) for s in scenarios_of(spec, amb)]
    return out


def task_name(ambiguity, k, scenario, seed):
    """``4-seed0`` for the default, ``4-lr2-seed0`` for reading 2 of ambiguity ``lr``."""
    return "%s%s-seed%d" % (scenario, "-%s%d" % (ambiguity, k) if ambiguity else "", seed)


def check(spec, path, overrides=()):
    """Every override of the file (after the sweep's own ``overrides``) against the
    schema, and every default against its scenario, before anything runs: InputError
    "file: ambiguity 'x', reading 'y': where: key: problem"."""
    overrides = list(overrides)
    plain = {s: flatten(load_scenario(s, overrides))
             for s in [spec["scenario"]] + partners(spec["scenario"])}
    for amb in spec["ambiguities"]:
        for k, reading in enumerate(amb["readings"]):
            where = "%s: ambiguity %r, reading %r" % (path, amb["name"], reading["name"])
            for scenario in scenarios_of(spec, amb):
                try:
                    config = flatten(load_scenario(scenario, overrides + reading["overrides"]))
                except InputError as e:
                    raise InputError("%s: %s" % (where, e))
                base = plain[scenario]
                changed = sorted(key for key in set(config) | set(base)
                                 if config.get(key) != base.get(key))
                changed += ["preprocess.lcn"] if reading["lcn"] else []
                if k == 0 and changed:
                    raise InputError("%s: %s: the first reading is the default and must be "
                                     "what scenario %s does already" % (where, changed[0],
                                                                        scenario))


def lcn_path(data):
    """Where the LCN copy of preprocessed ``data`` goes: beside it, ``<name>-lcn.h5``."""
    data = Path(data)
    return data.with_name(data.stem + "-lcn.h5")


def plan(path, seeds, data, images, weights, runs, overrides=(), tta=False, **engine):
    """Check the file, then write the sweep plan of its grid into ``runs``; ``overrides``
    apply to every run, before each reading's own."""
    spec = load(path)
    if not seeds:
        raise InputError("ambiguities: no seeds given")
    check(spec, path, overrides)
    if not data or not Path(data).is_file():
        raise InputError("%s: no preprocessed data (make preprocess DATA=...)" % data)
    preprocess = []
    if any(r["lcn"] for a in spec["ambiguities"] for r in a["readings"]):
        preprocess.append(lcn_item(data, images))
    for amb in spec["ambiguities"]:  # an evaluation reading's default is the grid's own
        default = amb["readings"][0]["evaluate"]
        if "tta" in default and default["tta"] != bool(tta):
            raise InputError("%s: ambiguity %r: its first reading (the default) evaluates %s "
                             "TTA, the grid %s (TTA=%d)" % (
                                 path, amb["name"], "with" if default["tta"] else "without",
                                 "with" if tta else "without", int(bool(tta))))
    tasks, views = [], []
    for ambiguity, k, scenario in cells(spec):
        reading = reading_of(spec, ambiguity, k) if ambiguity else {"overrides": [], "lcn": False,
                                                                   "evaluate": {}}
        for seed in seeds:
            item = {"name": task_name(ambiguity, k, scenario, seed), "scenario": scenario,
                    "ambiguity": ambiguity, "reading": k, "seed": seed}
            if reading["evaluate"]:  # the default's run, evaluated another way: no training
                views.append(dict(item, of=task_name(None, 0, scenario, seed),
                                  tta=reading["evaluate"].get("tta", bool(tta))))
                continue
            tasks.append(dict(item, data=preprocess[0]["out"] if reading["lcn"] else data,
                              overrides=list(overrides) + reading["overrides"]
                              + ["seed=%d" % seed]))
    return write_plan({"ambiguities": spec, "file": str(Path(path).resolve()),
                       "seeds": list(seeds), "overrides": list(overrides), "views": views},
                      tasks, data, weights, runs, tta, preprocess=preprocess, **engine)


def lcn_item(data, images):
    """The ``prepare`` step's job making the LCN copy of ``data`` from its images folder
    ``images`` (with ``data``'s own size and split), after checking it is its source."""
    if not images:
        raise InputError("ambiguities: a reading needs the data preprocessed with --lcn: "
                         "give the images folder of %s (make ambiguities DATA=...)" % data)
    try:
        labels, _ = find_inputs(images)
    except InputError as e:
        raise InputError("ambiguities: %s" % e)
    with h5py.File(data, "r") as f:
        attrs = dict(f.attrs)
    if sha1_of(labels) != attrs["labels_sha1"]:
        raise InputError("%s: not the labels %s was preprocessed from" % (labels, data))
    return {"data_dir": str(Path(images).resolve()), "out": str(lcn_path(data).resolve()),
            "lcn": True, "size": int(attrs["size"]), "seed": int(attrs["seed"]),
            "fractions": json.loads(attrs["fractions"])}
