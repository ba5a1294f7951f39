"""The model card's ``answers`` block: a temperature and thresholds, chosen on held-out digits.

Everything here is fitted on the training run's validation split, never on
the test set, which only reports what came of it:

- the temperature that makes the validation digits' probabilities honest
  (:func:`neuralnet.calibration.fit_temperature`);
- ``digit_score_threshold``: the digit score (the calibrated maximum
  probability) below which an image is "not a digit", set so that a share
  ``NOT_A_DIGIT_RATE`` of validation digits falls below it. Outlier exposure
  in training pushes letters, scribbles and pictures far below it;
- ``confidence_threshold``: the calibrated confidence below which a digit is
  "uncertain", set so that a share ``UNCERTAIN_RATE`` of the validation digits
  that pass the first threshold falls below it: those hold most of its errors.

Together they flag about 0.8% of held-out digits, which leaves the issue's
budget of 1% for MNIST test images answered anything but "ok".
"""
import numpy as np

from neuralnet.calibration import ECE_BINS, ece, fit_temperature, softmax

NOT_A_DIGIT_RATE = 0.004
UNCERTAIN_RATE = 0.004
SCORE = "max_probability"


def answers_block(net, validation, test):
    """The card's ``answers`` block for ``net``; ``validation`` and ``test`` are ``(x, labels)``."""
    (x_val, y_val), (x_test, y_test) = validation, test
    z_val, z_test = net.logits(x_val), net.logits(x_test)
    temperature = fit_temperature(z_val, y_val)
    confidence = softmax(z_val, temperature).max(axis=1)
    digit_threshold = float(np.quantile(confidence, NOT_A_DIGIT_RATE))
    passing = confidence[confidence >= digit_threshold]
    confident_threshold = float(np.quantile(passing, UNCERTAIN_RATE))
    p_test, p_calibrated = softmax(z_test), softmax(z_test, temperature)
    return {
        "temperature": round(temperature, 6),
        "score": SCORE,
        "digit_score_threshold": round(digit_threshold, 6),
        "confidence_threshold": round(max(confident_threshold, digit_threshold), 6),
        "fitted_on": f"validation split ({len(y_val)} training digits held out)",
        "rates": {"not_a_digit": NOT_A_DIGIT_RATE, "uncertain": UNCERTAIN_RATE},
        "test_ece": {"bins": ECE_BINS, "before": round(ece(p_test, y_test), 6),
                     "after": round(ece(p_calibrated, y_test), 6)},
    }
