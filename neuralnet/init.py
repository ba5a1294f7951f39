"""Weight initialisers, looked up by name: ``f(rng, d_in, d_out) -> (d_in, d_out)``."""
import numpy as np


def uniform(rng, d_in, d_out):
    """The notebook's choice: U(-0.5, 0.5) whatever the layer size."""
    return rng.uniform(-0.5, 0.5, size=(d_in, d_out))


def xavier(rng, d_in, d_out):
    """Glorot & Bengio (2010): keeps activation variance steady for tanh/sigmoid."""
    limit = np.sqrt(6.0 / (d_in + d_out))
    return rng.uniform(-limit, limit, size=(d_in, d_out))


def he(rng, d_in, d_out):
    """He et al. (2015): variance 2/d_in, right for ReLU which zeroes half its inputs."""
    return rng.normal(0.0, np.sqrt(2.0 / d_in), size=(d_in, d_out))


INITIALISERS = {"uniform": uniform, "xavier": xavier, "glorot": xavier, "he": he}
