"""The training job: MNIST in, a validated model version out (``mnist-train``).

Data loading and download, augmentation, presets, the training run and its
report live here; the network itself and the model format are
:mod:`neuralnet`'s.
"""
