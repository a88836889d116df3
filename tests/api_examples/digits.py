"""Example arguments for d2lcc.digits."""


def _images(n=4):
    import numpy as np

    return np.random.default_rng(0).random((n, 1, 8, 8)).astype("float32")


def _labels(n=4):
    import numpy as np

    return np.arange(n, dtype=np.int64) % 10


def _weights():
    from d2lcc import digits

    return digits.init_weights(0)


def _scores():
    import numpy as np

    return np.random.default_rng(0).random((4, 10))


EXAMPLES = {
    "d2lcc.digits.Split": lambda: dict(x_train=_images(), y_train=_labels(),
                                       x_test=_images(2), y_test=_labels(2)),
    "d2lcc.digits.logits": lambda: dict(x=_images(), weights=_weights()),
    "d2lcc.digits.accuracy": lambda: dict(scores=_scores(), labels=_labels()),
    "d2lcc.digits.train": lambda: dict(x=_images(), y=_labels(), epochs=1),
    "d2lcc.digits.to_onnx": lambda: dict(weights=_weights()),
    "d2lcc.digits.output_agreement": lambda: dict(a=_scores(), b=_scores(),
                                                  scale=0.1),
}
