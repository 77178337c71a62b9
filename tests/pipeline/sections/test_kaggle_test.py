"""pipeline.sections.kaggle_test: our score beside the leaderboard."""


def test_kaggle_test_scores_stand_beside_the_leaderboard(tmp_path):
    import json
    from pipeline.sections.kaggle_test import kaggle_test_section
    assert kaggle_test_section([{"dir": tmp_path, "config": {"target": "levels"}}]) == []
    out = tmp_path / "4-levels-x" / "kaggle-test" / "test"
    out.mkdir(parents=True)
    part = {"images": 10, "kappa": {"value": 0.7012, "ci": [0.6, 0.8]},
            "auc_referable": {"value": 0.9, "ci": [0.85, 0.95]}}
    (out / "score.json").write_text(json.dumps({"Public": dict(part, images=3),
                                                "Private": part}))
    md = kaggle_test_section([{"dir": tmp_path / "4-levels-x", "config": {"target": "levels"}}])
    assert ("| 4-levels-x (levels) | test: 13 | 0.701 [0.600, 0.800] | 0.701 [0.600, 0.800] "
            "| 0.900 [0.850, 0.950] |") in md
    # Kaggle's private board scored its Private part, about 80 % of the 53,576 images
    assert "| Kaggle 2015, 1st, Graham | Private: ~80 % of 53,576 | | 0.8496 | |" in md
    assert any(line.startswith("| Voets et al. 2019") and "0.951 [0.947, 0.956]" in line
               for line in md)
