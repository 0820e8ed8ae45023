"""Adversarial data: attacking a trained model (``cnnreg attack``) and training on attacks
(``--reg adversarial``).

* :mod:`cnnreg.kinds.attacks` — the attack contract (what an ``attack`` component is);
* :mod:`cnnreg.kinds.attacks` — the model seen from [0, 1] pixel space: logits, the loss
  gradient with respect to the input, seeded random numbers;
* :mod:`cnnreg.adversarial.robustness` — robust accuracy per eps, the Szegedy figure and the
  arrays behind them.

Nothing here imports keras at module level.
"""
