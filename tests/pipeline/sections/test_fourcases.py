"""The four-cases section: what ran, the curves, the table, the claims, the time."""
from pipeline.sections.fourcases import fourcases_section


def summary():
    diff = {"value": 0.031, "ci": [0.012, 0.05]}
    return {
        "command": "make fourcases SUMMARY=1", "made_by": ["make fourcases"], "folds": 5, "seeds": [0], "sizes": ["0.125", "1"],
        "missing": ["similar 4 at size 0.125"], "seconds": 600.0, "estimate_seconds": 900.0,
        "cpus": ["AMD EPYC (2 cores)"],
        "plan": "fourcases: ...", "large_from": 1000,
        "datasets": [{"name": "similar", "title": "similar (caltech)", "metric": "accuracy",
                      "margin": 0.02, "similarity": "similar",
                      "curves": {"1": [{"size": "1", "train_images": 563.0, "value": 0.99,
                                        "ci": [0.98, 1.0], "images": 938}]}}],
        "cells": [{"dataset": "similar", "size": "1", "train_images": 563.0, "lesson": "1",
                   "others": {"3": diff}, "verdict": "beaten",
                   "text": "1 is beaten: 3 is better by 0.031"}],
        "claims": [{"text": "top beats earlier", "a": "1", "b": "3", "kind": "better",
                    "sizes": [{"size": "0.125", "difference": diff, "verdict": "holds"},
                              {"size": "1", "difference": diff, "verdict": "holds"}],
                    "overall": "holds at every size measured",
                    "crossover": {"below": 70, "above": 563}}]}


def test_the_section_shows_the_curves_table_claims_and_time():
    text = "\n".join(fourcases_section(summary(), "fourcases/size_curves.png"))
    assert "![Learning curves" in text and "(fourcases/size_curves.png)" in text
    assert "| similar (caltech), accuracy | 1: linear on top features | - | " \
           "0.990 [0.980, 1.000] (563 img) |" in text
    assert "| similar | 1 (563) | 1: linear on top features | 3 +0.031 [+0.012, +0.050] | " \
           "**beaten**: 3 is better by 0.031 |" in text
    assert "0.125: +0.031 [+0.012, +0.050] holds; 1: +0.031 [+0.012, +0.050] holds" in text
    assert "between 70 and 563 training images" in text
    assert "Not yet run (the same command resumes them): similar 4 at size 0.125." in text
    assert "recorded 10 min of training and evaluation on AMD EPYC (2 cores)" in text
    assert "at most 15 min" in text
    assert "small by the lesson's own scale" in text
    assert "*Made by: `make fourcases`; `make fourcases SUMMARY=1`.*" in text


def test_cells_over_their_estimate_are_named_and_the_rest_totalled():
    s = summary()
    s["timing"] = [{"cell": "similar 2 at size 0.125", "seconds": 1260.0,
                    "estimate_seconds": 600.0},  # 2.1x: named
                   {"cell": "similar 1 at size 1", "seconds": 74.0, "estimate_seconds": 60.0},
                   {"cell": "different 4 at size 1", "seconds": 1440.0,
                    "estimate_seconds": 1560.0}]
    text = "\n".join(fourcases_section(s))
    assert "Cells that recorded more than 25 % over their estimate: similar 2 at size 0.125 " \
           "(21.0 min, estimate 10.0). The other 2 cells recorded 25 min against 27 min " \
           "estimated." in text
    s["timing"] = s["timing"][1:]
    assert "over their estimate" not in "\n".join(fourcases_section(s))
