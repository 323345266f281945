"""Ladders of small GPT runs: configs (pure Python), and the PyTorch trainer (extra ``ladder``)."""
