"""Ladders of small GPT runs: the designer and ladder files (pure Python), and the PyTorch trainer
(extra ``ladder``): ``train`` (the loop), ``features`` (the hook protocol), ``build`` (model, optimizer,
features from a config), ``checkpoint`` (training state), ``cooldown``, ``sparsity``, ``precision``,
``parametrization``, ``model``, ``corpus``, ``schedules``."""
