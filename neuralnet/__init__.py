"""A from-scratch NumPy neural network library, and the format its models are stored in.

The vocabulary is the notebook's: layers you ``add`` to a :class:`Network`,
then ``fit`` and ``predict``; everything is vectorised over mini-batches.
The training job (:mod:`trainer`) and the service (:mod:`service`) both
import it; neither imports the other.
"""
from importlib import metadata

from neuralnet.batchnorm import BatchNorm
from neuralnet.conv import Conv2D, MaxPool2D
from neuralnet.layers import Activation, Dense, Dropout, Flatten, Layer, Reshape
from neuralnet.network import Network

try:  # the one version string is pyproject.toml's, as installed
    __version__ = metadata.version("mnist-serving")
except metadata.PackageNotFoundError:  # run from a checkout that was never installed
    __version__ = "0+unknown"
__all__ = ["Activation", "BatchNorm", "Conv2D", "Dense", "Dropout", "Flatten", "Layer", "MaxPool2D", "Network",
           "Reshape", "__version__"]
