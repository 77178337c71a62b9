"""pipeline.runs.kept: a finished run's evidence kept without its model, restored only
for the same config, data and weights, never half-written."""
import json

import numpy as np

from pipeline.runs import kept

CONFIG = {"scenario": "1", "seed": 0}
ENV = {"data_sha1": "a" * 40, "weights_sha1": "b" * 40}


def finished_run(folder, config=CONFIG, env=ENV, evaluated=True):
    """A run folder as train and evaluate leave it, with a (fake) model beside."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "environment.json").write_text(json.dumps(env))
    (folder / "metrics.csv").write_text("epoch,seconds\n1,12.5\n")
    (folder / "model.npz").write_bytes(b"\0" * 1000)
    (folder / "DONE").write_text("done\n")
    if evaluated:
        (folder / "evaluation.json").write_text(json.dumps({"seconds": 3.0}))
        np.savez(folder / "predictions.npz", score=np.array([0.1, 0.9]))
    return folder


def test_the_evidence_is_kept_without_the_model(tmp_path):
    run = finished_run(tmp_path / "runs" / "r1")
    target = kept.keep(run, tmp_path / "kept")
    assert sorted(p.name for p in target.iterdir()) == sorted(kept.EVIDENCE)
    for name in kept.EVIDENCE:
        assert (target / name).read_bytes() == (run / name).read_bytes()
    assert not [p for p in (tmp_path / "kept").iterdir() if p.name.startswith(".")]


def test_a_run_not_evaluated_is_not_kept(tmp_path):
    run = finished_run(tmp_path / "runs" / "r1", evaluated=False)
    assert kept.keep(run, tmp_path / "kept") is None
    assert not (tmp_path / "kept" / "r1").exists()


def test_a_kept_run_is_replaced_whole_when_its_evidence_changed(tmp_path):
    run = finished_run(tmp_path / "runs" / "r1")
    kept.keep(run, tmp_path / "kept")
    (run / "evaluation.json").write_text(json.dumps({"seconds": 4.0}))
    target = kept.keep(run, tmp_path / "kept")
    assert json.loads((target / "evaluation.json").read_text()) == {"seconds": 4.0}
    assert [p.name for p in (tmp_path / "kept").iterdir()] == ["r1"]


def test_restored_only_where_missing_and_with_the_same_config_data_and_weights(tmp_path):
    kept.keep(finished_run(tmp_path / "runs" / "r1"), tmp_path / "kept")
    fresh = tmp_path / "fresh"
    for config, data, weights in ((dict(CONFIG, seed=1), "a" * 40, "b" * 40),
                                  (CONFIG, "c" * 40, "b" * 40), (CONFIG, "a" * 40, None)):
        assert not kept.restore(tmp_path / "kept", fresh, "r1", config, data, weights)
    assert not (fresh / "r1").exists()
    assert kept.restore(tmp_path / "kept", fresh, "r1", CONFIG, "a" * 40, "b" * 40)
    assert (fresh / "DONE").exists() is False and (fresh / "r1" / "DONE").exists()
    assert not (fresh / "r1" / "model.npz").exists()
    # a run already there (trained here, or restored before) is left as it is
    (fresh / "r1" / "metrics.csv").write_text("epoch,seconds\n1,99\n")
    assert not kept.restore(tmp_path / "kept", fresh, "r1", CONFIG, "a" * 40, "b" * 40)
    assert "99" in (fresh / "r1" / "metrics.csv").read_text()
