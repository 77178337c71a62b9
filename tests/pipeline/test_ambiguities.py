"""pipeline.ambiguities: the readings file as a grid of runs (against a hand-written
list), the schema check before anything runs, and the whole command (make
ambiguities) on the mini network here, its report section included."""
import json
import subprocess
from pathlib import Path

import pytest

from pipeline.ambiguities import load, plan
from pipeline.evidence.claims import CLAIMS
from pipeline.errors import InputError
from tests.conftest import ROOT
from tests.pipeline.test_sweep import SWEEP_MINI
from tests.pipeline.test_train import data_h5  # noqa: F401  (module fixture)

SMALL = """
scenario = "4"

[[ambiguity]]
name = "lr"
quote = "really small"
why = "no number"
[[ambiguity.reading]]
name = "as scenario 4"
set = { "solver.base_lr" = 0.0005 }
[[ambiguity.reading]]
name = "larger"
set = { solver = { base_lr = 0.001 } }
[[ambiguity.reading]]
name = "larger, no momentum"
set = { "solver.base_lr" = 0.001, "solver.momentum" = 0.0 }

[[ambiguity]]
name = "prep"
quote = "(nothing)"
why = "not stated"
partners = true
[[ambiguity.reading]]
name = "none"
[[ambiguity.reading]]
name = "lcn"
preprocess = { lcn = true }

[[note]]
name = "modality"
quote = "angiography"
why = "colour photographs"
"""


def write(tmp_path, text, name="amb.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_the_grid_is_one_change_at_a_time_from_one_default(data_h5, tmp_path):  # noqa: F811
    runs = tmp_path / "runs"
    planned = plan(write(tmp_path, SMALL), [0, 1], data_h5, Path(data_h5).parent / "raw", None,
                   runs)
    lcn = str(Path(data_h5).with_name("data-lcn.h5"))
    data = str(Path(data_h5).resolve())
    partners = ["scratch", "1", "3", "2"]  # the claims' order
    by_hand = [("4-seed0", "4", data, ["seed=0"]), ("4-seed1", "4", data, ["seed=1"])]
    for s in partners:
        by_hand += [("%s-seed0" % s, s, data, ["seed=0"]), ("%s-seed1" % s, s, data, ["seed=1"])]
    by_hand += [("4-lr1-seed0", "4", data, ["solver.base_lr=0.001", "seed=0"]),
                ("4-lr1-seed1", "4", data, ["solver.base_lr=0.001", "seed=1"]),
                ("4-lr2-seed0", "4", data,
                 ["solver.base_lr=0.001", "solver.momentum=0.0", "seed=0"]),
                ("4-lr2-seed1", "4", data,
                 ["solver.base_lr=0.001", "solver.momentum=0.0", "seed=1"])]
    for s in ["4"] + partners:
        by_hand += [("%s-prep1-seed0" % s, s, lcn, ["seed=0"]),
                    ("%s-prep1-seed1" % s, s, lcn, ["seed=1"])]
    got = [(t["name"], t["scenario"], t["data"], t["overrides"]) for t in planned["tasks"]]
    assert got == by_hand
    assert planned["preprocess"] == [{"data_dir": str((Path(data_h5).parent / "raw").resolve()),
                                      "out": lcn, "lcn": True, "size": 72, "seed": 0,
                                      "fractions": [0.7, 0.15, 0.15]}]
    lines = (runs / "tasks.txt").read_text().splitlines()
    assert len(lines) == len(by_hand) == 24 and "--name 4-lr2-seed1 " in lines[13]
    assert json.loads((runs / "sweep.json").read_text())["ambiguities"]["notes"][0]["name"] \
        == "modality"


@pytest.mark.parametrize("change, message", [
    (('"solver.momentum" = 0.0 }', '"solver.momentm" = 0.0 }'),
     "ambiguity 'lr', reading 'larger, no momentum': .*solver.momentm: unknown key"),
    (('base_lr = 0.001 }', 'base_lr = -1 }'),
     "ambiguity 'lr', reading 'larger': .*solver.base_lr: -1 is below 0"),
    (('set = { "solver.base_lr" = 0.0005 }', 'set = { "solver.base_lr" = 0.0002 }'),
     "ambiguity 'lr', reading 'as scenario 4': solver.base_lr: the first reading is the "
     "default and must be what scenario 4 does already"),
    (('name = "none"\n', 'name = "none"\npreprocess = { lcn = true }\n'),
     "reading 'none': preprocess.lcn: the first reading is the default"),
    (('name = "prep"', 'name = "Prep step"'), "ambiguity 2: name 'Prep step' is not one"),
    (('preprocess = { lcn = true }', 'preprocess = { lnc = true }'),
     "ambiguity 'prep', reading 2: preprocess.lnc: unknown key"),
    (('why = "not stated"', 'why = "not stated"\nparters = true'),
     "ambiguity 'prep': parters: unknown key"),
])
def test_every_override_is_checked_before_anything_runs(data_h5, tmp_path, change,  # noqa: F811
                                                        message):
    path = write(tmp_path, SMALL.replace(*change))
    with pytest.raises(InputError, match=message):
        plan(path, [0], data_h5, Path(data_h5).parent / "raw", None, tmp_path / "runs")
    assert not (tmp_path / "runs").exists()


def test_the_project_file_is_sound_and_each_reading_changes_what_it_says():
    spec = load(ROOT / "scenarios" / "ambiguities.toml")
    from pipeline.ambiguities import check
    check(spec, "ambiguities.toml")
    names = {a["name"]: a for a in spec["ambiguities"]}
    assert names["frozen"]["readings"][3]["overrides"] == ["freeze=[]"]
    assert names["positive"]["partners"] and names["preprocess"]["partners"]
    assert names["preprocess"]["readings"][1]["lcn"] and spec["notes"][0]["name"] == "modality"
    assert sum(len(a["readings"]) - 1 for a in spec["ambiguities"]) == 16
    assert names["tta"]["partners"] and [r["evaluate"] for r in names["tta"]["readings"]] == [
        {"tta": True}, {"tta": False}]  # evaluated both ways, nothing trained for it





def test_make_ambiguities_runs_the_grid_on_the_mini_network(data_h5, tmp_path):  # noqa: F811
    small = SMALL.replace('''[[ambiguity.reading]]
name = "larger, no momentum"
set = { "solver.base_lr" = 0.001, "solver.momentum" = 0.0 }
''', "")
    small = small.replace("[[note]]", """[[ambiguity]]
name = "tta"
quote = "(not stated)"
why = "scoring"
partners = true
[[ambiguity.reading]]
name = "one image"
evaluate = { tta = false }
[[ambiguity.reading]]
name = "four rotations"
evaluate = { tta = true }

[[note]]""")
    path = write(tmp_path, small)
    runs = tmp_path / "runs"
    sets = SWEEP_MINI + ["feature_layer=inception_3a/output", "epochs=1"]
    args = ["make", "-s", "ambiguities", "AMBIGUITY_FILE=%s" % path, "RUNS=%s" % tmp_path,
            "AMBIGUITY_RUNS=%s" % runs, "DATASET=%s" % data_h5, "DATA=%s" % (
                Path(data_h5).parent / "raw"), "WEIGHTS=none", "NEEDS_WEIGHTS=", "SEEDS=0",
            "SET=%s" % " ".join(sets), "TTA=0"]
    done = subprocess.run(args, cwd=str(ROOT), capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    names = ["4-seed0", "scratch-seed0", "1-seed0", "3-seed0", "2-seed0", "4-lr1-seed0"] + [
        "%s-prep1-seed0" % s for s in ("4", "scratch", "1", "3", "2")]
    assert all((runs / n / "DONE").exists() and (runs / n / "evaluation.json").exists()
               for n in names)
    lcn = json.loads((runs / "4-prep1-seed0" / "environment.json").read_text())
    assert lcn["data"].endswith("data-lcn.h5")
    for s in ("4", "scratch", "1", "3", "2"):  # the TTA reading: the default runs, viewed
        view = runs / ("%s-tta1-seed0" % s)
        assert (view / "model.npz").is_symlink() and not (view / "checkpoint.npz").exists()
        assert (view / "model.npz").resolve() == (runs / ("%s-seed0" % s) / "model.npz").resolve()
        assert json.loads((view / "evaluation.json").read_text())["tta"] is True
        assert json.loads((runs / ("%s-seed0" % s) / "evaluation.json").read_text())["tta"] is False
    md = (runs / "report-data.md").read_text()
    section = md[md.index("## How much the unstated choices matter"):]
    assert "16 of 16 runs are finished" in section and "(5 of them the default's runs" in section
    assert "|  | four rotations | 1 |" in section
    assert "| lr | as scenario 4 (default) | 1 |" in section
    assert "|  | larger | 1 |" in section and "| prep | none (default) | 1 |" in section
    assert "**modality** (nothing to run)" in section
    # one evaluation everywhere: the claims table and the grid's default reading are made
    # from the same runs, evaluated alike, and give each claim the same verdict
    claims = md[md.index("## The post's claims"):md.index("## How much")]
    every = section[section.index("### Every reading"):]
    default = next(line for line in every.splitlines() if "(default)" in line)
    cells = [c.strip() for c in default.strip("|").split("|")][-len(CLAIMS):]
    for claim, cell in zip(CLAIMS, cells):
        row = next(line for line in claims.splitlines() if line.startswith("| " + claim[0]))
        verdict = row.rstrip(" |").rsplit("| ", 1)[1].strip("*")
        assert cell.startswith("**%s**" % verdict) or (
            verdict == "not applicable" and cell.startswith("not applicable")), (row, cell)
        summary = next(line for line in section.splitlines() if line.startswith("| " + claim[0]))
        assert summary.split("|")[2].strip().startswith("**%s**" % verdict), summary
    for claim in CLAIMS:  # each with its robustness line
        row = next(line for line in section.splitlines() if line.startswith("| " + claim[0]))
        if claim[1:3] == ("3", "1"):  # SET gives 1 and 3 one feature layer: one config
            assert "| **not applicable** |" in row and "tta = four rotations (both sides the " \
                "same config; not counted)" in row, row
        else:
            assert " readings" in row.split("|")[3], row
