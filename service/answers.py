"""What the service answers for each image: a digit and how sure it is, or why it gives none.

Every prediction carries a ``status``:

- ``ok``: one digit, confidently;
- ``uncertain``: one digit, but with a calibrated confidence below the
  model's threshold (the digit is still given);
- ``no_digit``: nothing written: preprocessing found no ink;
- ``not_a_digit``: ink that the model does not take for any digit (its
  digit score is below the threshold);
- ``several_digits``: marks of digit size side by side: a number, for ``/read``.

Confidence is the softmax of the logits divided by the temperature fitted on
the training run's validation split (:mod:`neuralnet.calibration`). The
thresholds come from the model card's ``answers`` block, where the trainer
records what it chose on validation data; the configuration may override them.
A card without the block (versions trained before it existed) gets temperature
1 and thresholds that flag nothing as not a digit.
"""
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from neuralnet.calibration import softmax, top2

OK, UNCERTAIN, NO_DIGIT, NOT_A_DIGIT, SEVERAL = "ok", "uncertain", "no_digit", "not_a_digit", "several_digits"
STATUSES = (OK, UNCERTAIN, NO_DIGIT, NOT_A_DIGIT, SEVERAL)


def top2_probability(p: NDArray[np.floating], z: NDArray[np.floating]) -> NDArray[np.floating]:
    return top2(p)


def max_probability(p: NDArray[np.floating], z: NDArray[np.floating]) -> NDArray[np.floating]:
    return p.max(axis=1)


def energy(p: NDArray[np.floating], z: NDArray[np.floating]) -> NDArray[np.floating]:
    """``logsumexp(z)``: how strongly the logits speak for any class (Liu et al., 2020)."""
    m = z.max(axis=1)
    return m + np.log(np.exp(z - m[:, None]).sum(axis=1))


# digit scores by name, as the card records them: higher means more like a digit
SCORES = {"top2_probability": top2_probability, "max_probability": max_probability, "energy": energy}


@dataclass(frozen=True)
class Policy:
    temperature: float = 1.0
    confidence: float = 0.0        # calibrated confidence below which a digit is "uncertain"
    score: str = "max_probability"
    digit_score: float = -np.inf   # digit score below which the image is "not_a_digit"

    @classmethod
    def from_card(cls, card: dict[str, Any], confidence: float = -1.0, digit_score: float | None = None,
                  reading: bool = False) -> "Policy":
        """The card's ``answers`` block (checked by the model format), with overrides where given
        (``confidence`` >= 0, ``digit_score`` not None). ``reading``: for the marks of a number on
        /read, whose digit score threshold is the block's ``read_digit_score_threshold``."""
        block = card.get("answers") or {}
        threshold = block.get("digit_score_threshold", -np.inf)
        if reading:
            threshold = block.get("read_digit_score_threshold", threshold)
        return cls(temperature=block.get("temperature", 1.0),
                   confidence=confidence if confidence >= 0 else block.get("confidence_threshold", 0.0),
                   score=block.get("score", "max_probability"),
                   digit_score=digit_score if digit_score is not None else threshold)


def judge(policy: Policy, z: NDArray[np.floating], parts: NDArray[np.integer]) -> tuple[NDArray, list[str]]:
    """Calibrated probabilities ``(n, 10)`` and a status per row, for logits ``z: (n, 10)`` and the
    number of marks preprocessing found in each image, ``parts: (n,)``."""
    z = z.astype(np.float64)
    p = softmax(z, policy.temperature)
    is_digit = (SCORES[policy.score](p, z) >= policy.digit_score).tolist()
    confident = (p.max(axis=1) >= policy.confidence).tolist()
    statuses = [NO_DIGIT if n == 0 else NOT_A_DIGIT if not digit else SEVERAL if n > 1 else OK if sure else UNCERTAIN
                for n, digit, sure in zip(parts.tolist(), is_digit, confident)]
    return p, statuses
