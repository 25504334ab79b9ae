"""Random batches shaped as Transform's output for the model (models/model.py), for unit tests."""

import numpy as np

from models import features, model


def transformed_batch(size: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Feature name -> [size, 1]: a random id for each categorical input, a standard normal for each numeric."""
    rng = np.random.default_rng(seed)
    batch = {
        name: rng.integers(0, id_count, size=(size, 1))
        for name, id_count in model._categorical_id_counts().items()
    }
    batch.update(
        {
            features.transformed_name(name): rng.normal(size=(size, 1)).astype("float32")
            for name in features.NUMERIC_FEATURES
        }
    )
    return batch
