"""CI: kagglekit installed with the JAX backend alone (``pip install .[jax]``) imports and trains.

Run in a fresh virtual environment that has no TensorFlow: checks that `import kagglekit`
works, that TensorFlow cannot be imported there, and that a one-step `kagglekit.fine_tune`
on tiny in-memory arrays runs with ``KERAS_BACKEND=jax``. Prints one line per check.
"""
from __future__ import annotations

import os
import sys
import tempfile

os.environ["KERAS_BACKEND"] = "jax"


def main() -> int:
    """Return 0 when every check passes (an AssertionError says which one did not)."""
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        print("jax-only: tensorflow is not importable (as intended)")
    else:
        raise AssertionError("tensorflow is importable: this environment is not a jax-only install")

    import kagglekit as kk

    print(f"jax-only: import kagglekit {kk.__version__} from {os.path.dirname(kk.__file__)}")
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(16, 32, 32, 3), dtype="uint8")
    y = np.arange(16) % 2
    with tempfile.TemporaryDirectory() as workdir:
        learner = kk.fine_tune((x, y), backbone="resnet_tiny", weights=None, sizes=[32], epochs=1,
                               freeze_epochs=0, valid=None, batch_size=16, workdir=workdir, verbose=0)
    import keras

    assert keras.backend.backend() == "jax", keras.backend.backend()
    assert "tensorflow" not in sys.modules, "something imported tensorflow"
    print(f"jax-only: one-step fine_tune on the {keras.backend.backend()} backend: {type(learner).__name__} ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
