"""The documented parameter count of every registered model, for the model and config tests."""

from torch import nn

# name -> {(in_channels, image_size): parameter count}, 10 classes. Where a published count exists it matches:
# resnet18/34/50 11,173,962 / 21,282,122 / 23,520,842 and densenet121 6,956,298 are the counts of the widely
# used CIFAR reimplementations (kuangliu/pytorch-cifar); vgg16 is that repo's 14,728,266 minus the 4,224
# convolution biases we drop before BatchNorm. simple_cnn and lenet5 are counted by hand:
# simple_cnn: conv 3*16*9+16, linear 16*15*15*10+10 (28x28: 16*13*13*10+10).
# lenet5: conv 6@5x5, conv 16@5x5, linear 400-120-84-10 (28x28 input is padded to the 32x32 frame).
# fastnet: bias-free 3x3 convs 3-24 | 24-64, 64-64 | 64-128, 128-128 | 128-256, 256-256 (9 * sum of in*out), a
# BatchNorm (2 * width) after each, linear 256*10 without bias.
# alexnet_cifar: convs 64/192/384/256/256 (3x3) = 2.47M; MLP 256*2*2 (28x28: 256*1*1) -> 4096 -> 4096 -> 10.
EXPECTED_PARAMS: dict[str, dict[tuple[int, int], int]] = {
    "simple_cnn": {(3, 32): 448 + 36_010, (1, 28): 160 + 27_050},
    "lenet5": {(3, 32): 456 + 2_416 + 48_120 + 10_164 + 850, (1, 28): 156 + 2_416 + 48_120 + 10_164 + 850},
    "alexnet_cifar": {
        (3, 32): 2_251_584 + 4_198_400 + 16_781_312 + 40_970,
        (1, 28): 2_251_584 - 2 * 64 * 9 + 1_052_672 + 16_781_312 + 40_970,
    },
    "alexnet_cifar7": {(3, 32): 6_616_714, (1, 28): 5_296_586},
    "alexnet": {(3, 224): 46_787_978, (1, 224): 46_764_746},
    "vgg11": {(3, 32): 9_228_362, (1, 28): 9_227_210},
    "vgg13": {(3, 32): 9_413_066, (1, 28): 9_411_914},
    "vgg16": {(3, 32): 14_728_266 - 4_224, (1, 28): 14_722_890},
    "vgg19": {(3, 32): 20_035_018, (1, 28): 20_033_866},
    "nin": {(3, 32): 968_394, (1, 28): 958_794},
    "googlenet": {(3, 32): 5_871_914, (1, 28): 5_868_458},
    "resnet18": {(3, 32): 11_173_962, (1, 28): 11_172_810},
    "resnet34": {(3, 32): 21_282_122, (1, 28): 21_280_970},
    "resnet50": {(3, 32): 23_520_842, (1, 28): 23_519_690},
    "densenet121": {(3, 32): 6_956_298, (1, 28): 6_955_146},
    "fastnet": {
        (3, 32): 9 * (3 * 24 + 24 * 64 + 64 * 64 + 64 * 128 + 128 * 128 + 128 * 256 + 256 * 256)
        + 2 * (24 + 2 * 64 + 2 * 128 + 2 * 256)
        + 2_560,
        (1, 28): 1_161_656 - 2 * 24 * 9,
    },
    "densenet_small": {(3, 32): 176_122, (1, 28): 175_690},
}


def expected_params(name: str, shape: tuple[int, int], num_classes: int, model: nn.Module) -> int:
    """The documented count of ``name`` with ``num_classes`` outputs instead of 10.

    Only the classifier (the model's last layer with ``num_classes`` outputs) differs: one row of weights and a
    bias per class. ``model`` supplies that row's width; a model whose head ignored ``num_classes`` has no such
    layer and fails here.
    """
    if num_classes == 10:
        return EXPECTED_PARAMS[name][shape]
    heads = [m for m in model.modules() if isinstance(m, nn.Linear | nn.Conv2d) and m.weight.shape[0] == num_classes]
    assert heads, f"{name} has no layer with {num_classes} outputs"
    per_class = heads[-1].weight[0].numel() + (heads[-1].bias is not None)
    return EXPECTED_PARAMS[name][shape] + (num_classes - 10) * per_class
