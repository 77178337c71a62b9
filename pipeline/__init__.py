"""The pipeline stages: download, preprocess, train, evaluate, report.

Importing ``models`` first sets Theano's flags and the compatibility layer.
"""
import models  # noqa: F401
