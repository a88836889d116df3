"""Example arguments for d2lcc.qnn.ptq, d2lcc.qnn.qdq and the importer's helpers."""


def _float_model():
    from d2lcc import models

    return models.small_cnn_onnx(models.small_cnn_weights(0))


def _images(n=2):
    import numpy as np

    return np.random.default_rng(0).normal(size=(n, 3, 32, 32)).astype("float32")


EXAMPLES = {
    "d2lcc.qnn.ptq.float_input": lambda: dict(model=_float_model()),
    "d2lcc.qnn.ptq.quantize_model": lambda: dict(model=_float_model(),
                                                 calibration_data=_images()),
}
