"""scalinglab: a laboratory for the scaling laws of language-model pretraining."""

__version__ = "0.1.0"
