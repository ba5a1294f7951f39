"""A from-scratch NumPy neural network for MNIST, and the job that trains it.

The vocabulary is the notebook's: layers you ``add`` to a :class:`Network`,
then ``fit`` and ``predict``; everything is vectorised over mini-batches.
"""
from trainer.layers import Activation, Dense, Dropout, Layer
from trainer.network import Network

__version__ = "0.1.0"
__all__ = ["Activation", "Dense", "Dropout", "Layer", "Network", "__version__"]
