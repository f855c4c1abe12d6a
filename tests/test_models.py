from __future__ import annotations

import pytest
import torch

from cnnbench.models import create_model, list_models

# name -> {(in_channels, image_size): parameter count}, counted by hand from the layer shapes:
# simple_cnn: conv 3*16*9+16, linear 16*15*15*10+10 (28x28: 16*13*13*10+10).
# lenet5: conv 6@5x5, conv 16@5x5, linear 400-120-84-10 (28x28 input is padded to the 32x32 frame).
EXPECTED_PARAMS = {
    "simple_cnn": {(3, 32): 448 + 36_010, (1, 28): 160 + 27_050},
    "lenet5": {(3, 32): 456 + 2_416 + 48_120 + 10_164 + 850, (1, 28): 156 + 2_416 + 48_120 + 10_164 + 850},
}


def test_registry_lists_the_models_and_rejects_unknown_names() -> None:
    assert set(EXPECTED_PARAMS) <= set(list_models())
    with pytest.raises(KeyError, match="available: .*lenet5"):
        create_model("lenet6")


@pytest.mark.parametrize("name", sorted(EXPECTED_PARAMS))
@pytest.mark.parametrize(("in_channels", "image_size"), [(3, 32), (1, 28)])
def test_output_shape_and_parameter_count(name: str, in_channels: int, image_size: int) -> None:
    model = create_model(name, num_classes=10, in_channels=in_channels, image_size=image_size)
    logits = model(torch.randn(4, in_channels, image_size, image_size))
    assert logits.shape == (4, 10)
    assert sum(p.numel() for p in model.parameters()) == EXPECTED_PARAMS[name][(in_channels, image_size)]
