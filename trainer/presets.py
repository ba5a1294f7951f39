"""Training configurations: one dataclass, and named presets that fill it in.

The CLI starts from a preset and overrides single fields, so ``--preset fast
--epochs 2`` means "the fast recipe, for two epochs". Every field lands in the
model card, which makes each model reproducible from its card alone.
"""
from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class TrainConfig:
    preset: str = "mlp"
    conv: tuple = ()  # (filters, kernel[, stride]) per convolution block; () = an MLP
    batchnorm: bool = False  # after each convolution's pooling and each hidden dense layer
    hidden: tuple = (800, 800)
    activation: str = "relu"
    loss: str = "softmax_cross_entropy"
    init: str = "he"
    optimizer: str = "adam"
    lr: float = 1e-3
    schedule: str = "cosine"
    warmup_epochs: float = 0.0
    weight_decay: float = 0.0
    dropout: float = 0.0
    epochs: int = 30
    batch_size: int = 128
    epoch_size: int | None = None  # samples per epoch; None = the whole training split
    augment: str = "shift"
    outliers: int = 0  # generated non-digits added to the training set (trainer/nondigits.py)
    val_split: float = 1 / 12  # 5,000 of the 60,000 training images
    seed: int = 1
    extra: dict = field(default_factory=dict)

    @property
    def output_activation(self):
        # cross-entropy wants a softmax; MSE keeps the notebook's squashing output
        return "softmax" if self.loss != "mse" else self.activation


PRESETS = {
    # The notebook: 784-100-50-10 tanh, MSE, SGD lr 0.1 one sample at a time,
    # 500 "epochs" of 256 random samples each.
    "notebook": TrainConfig(preset="notebook", hidden=(100, 50), activation="tanh", loss="mse",
                            init="uniform", optimizer="sgd", lr=0.1, schedule="constant",
                            epochs=500, batch_size=1, epoch_size=256, augment="none"),
    # For CI, demos and the container smoke test: well under 30 s on two cores.
    "fast": TrainConfig(preset="fast", hidden=(256, 128), epochs=15, lr=2e-3),
    # The best MLP found within three minutes on two cores (docs/benchmarks.md).
    "mlp": TrainConfig(preset="mlp"),
    # A small convolutional network, trained against the ways uploads differ from MNIST, and
    # on 8,000 generated non-digits so that it can say "not a digit". Its first convolution
    # strides instead of pooling, and the layers after it are narrow: the widths that keep one
    # served image cheap next to the MLP's (docs/benchmarks.md#cnn-against-mlp). Batches of 64,
    # not 128: as accurate, and this library's epoch comes nearer PyTorch's
    # (docs/benchmarks.md#the-cnn-against-pytorch).
    "cnn": TrainConfig(preset="cnn", conv=((32, 5, 2), (48, 3)), batchnorm=True, hidden=(128,), epochs=16,
                       lr=2e-3, batch_size=64, augment="handwriting", outliers=8_000),
}


# What "default" means: the recipe of the model the repository ships and the service serves.
DEFAULT = "cnn"
NAMES = (*PRESETS, "default")


def preset(name, **overrides):
    """The named preset with ``overrides`` (``None`` values ignored) applied."""
    try:
        base = PRESETS[DEFAULT if name == "default" else name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose from {sorted(NAMES)}") from None
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})
