"""A tqdm progress bar over training epochs, as an Avalanche plugin."""
from __future__ import annotations

from typing import Optional

from avalanche.core import SupervisedPlugin
from tqdm.auto import tqdm

__all__ = ["EpochProgressPlugin"]


class EpochProgressPlugin(SupervisedPlugin):
    """Shows one bar per experience, advancing at the end of every epoch.

    :param desc: prefix of the bar's description.
    :param position: tqdm ``position`` (nest it under outer bars).
    :param disable: turn the bar off (e.g. when not on a terminal).
    """

    def __init__(self, *, desc: str = "epochs", position: int = 2,
                 disable: Optional[bool] = None) -> None:
        super().__init__()
        self.desc, self.position, self.disable = desc, position, disable
        self._bar: Optional[tqdm] = None

    def before_training_exp(self, strategy, *args, **kwargs):
        exp = strategy.experience.current_experience
        self._bar = tqdm(total=strategy.train_epochs, desc=f"{self.desc} (exp {exp})",
                         position=self.position, leave=False, disable=self.disable)

    def after_training_epoch(self, strategy, *args, **kwargs):
        if self._bar is not None and not self._bar.disable:
            self._bar.set_postfix(loss=f"{strategy.loss.item():.3f}")
            self._bar.update(1)

    def after_training_exp(self, strategy, *args, **kwargs):
        if self._bar is not None:
            self._bar.close()
            self._bar = None
