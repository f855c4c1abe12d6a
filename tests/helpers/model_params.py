"""The documented parameter count of every registered model, for the model and config tests."""

from collections.abc import Callable

from torch import nn

# Every count is derived here from the layers each architecture is documented to have (its docstring, the
# paper's table), never copied from the code's output. Where a published count exists it must agree
# (PUBLISHED_PARAMS, checked in test_models.py): resnet18/34/50 and densenet121 are the counts of the widely used
# CIFAR reimplementations (kuangliu/pytorch-cifar); vgg16 is that repo's count minus the 4,224 convolution biases
# dropped before BatchNorm.
PUBLISHED_PARAMS = {
    "resnet18": 11_173_962,
    "resnet34": 21_282_122,
    "resnet50": 23_520_842,
    "densenet121": 6_956_298,
    "vgg16": 14_728_266 - 4_224,
}


def conv(c_in: int, c_out: int, k: int, bias: bool = True) -> int:
    return c_in * c_out * k * k + (c_out if bias else 0)


def conv_bn(c_in: int, c_out: int, k: int) -> int:
    """A bias-free convolution and its BatchNorm (a scale and a shift per channel)."""
    return conv(c_in, c_out, k, bias=False) + 2 * c_out


def linear(n_in: int, n_out: int, bias: bool = True) -> int:
    return n_in * n_out + (n_out if bias else 0)


def mlp(widths: tuple[int, ...]) -> int:
    return sum(linear(a, b) for a, b in zip(widths, widths[1:], strict=False))


def side(size: int, k: int, stride: int = 1, padding: int = 0) -> int:
    """Output side of a convolution or pooling window."""
    return (size + 2 * padding - k) // stride + 1


def simple_cnn(c: int, size: int) -> int:  # conv 16@3x3 (no padding), linear from 16 maps of (size - 2)/2
    return conv(c, 16, 3) + linear(16 * ((size - 2) // 2) ** 2, 10)


def lenet5(c: int, size: int) -> int:  # conv 6@5x5, conv 16@5x5, linear 400-120-84-10 (28x28 padded to 32x32)
    return conv(c, 6, 5) + conv(6, 16, 5) + mlp((16 * 5 * 5, 120, 84, 10))


def alexnet_cifar(c: int, size: int) -> int:  # 3x3 convs 64 (stride 2)/192/384/256/256, three 2x2 pools, 4096-4096
    convs = conv(c, 64, 3) + conv(64, 192, 3) + conv(192, 384, 3) + conv(384, 256, 3) + conv(256, 256, 3)
    s = side(side(side(side(size, 3, 2, 1), 2, 2), 2, 2), 2, 2)
    return convs + mlp((256 * s * s, 4096, 4096, 10))


def alexnet_cifar7(c: int, size: int) -> int:  # 7x7/2 96, 3x3/2 pool, 5x5 256, 3x3/2 pool, 384-384-256, 1024-512
    convs = conv(c, 96, 7) + conv(96, 256, 5) + conv(256, 384, 3) + conv(384, 384, 3) + conv(384, 256, 3)
    s = side(side(side(size, 7, 2, 2), 3, 2), 3, 2)
    return convs + mlp((256 * s * s, 1024, 512, 10))


def alexnet(c: int, size: int) -> int:  # 11x11/4 96, pool, 5x5 256, pool, 384-384-256, pool (all 3x3/2), 4096-4096
    convs = conv(c, 96, 11) + conv(96, 256, 5) + conv(256, 384, 3) + conv(384, 384, 3) + conv(384, 256, 3)
    s = side(side(side(side(size, 11, 4, 1), 3, 2), 3, 2), 3, 2)
    return convs + mlp((256 * s * s, 4096, 4096, 10))


def vgg(stage_depths: tuple[int, ...]) -> "Counter":
    """Five stages of 3x3 conv + BN (64, 128, 256, 512, 512 channels), pooled to 1x1, one linear layer."""

    def count(c: int, size: int) -> int:
        total = 0
        for width, depth in zip((64, 128, 256, 512, 512), stage_depths, strict=True):
            for _ in range(depth):
                total, c = total + conv_bn(c, width, 3), width
        return total + linear(512, 10)

    return count


def nin(c: int, size: int) -> int:  # mlpconv 192-160-96 (5x5), 192-192-192 (5x5), 192 (3x3)-192-classes, all BN
    blocks = conv_bn(c, 192, 5) + conv_bn(192, 160, 1) + conv_bn(160, 96, 1)
    blocks += conv_bn(96, 192, 5) + conv_bn(192, 192, 1) + conv_bn(192, 192, 1)
    return blocks + conv_bn(192, 192, 3) + conv_bn(192, 192, 1) + conv(192, 10, 1)


GOOGLENET_MODULES = (  # (1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool projection), the paper's table 1: 3a-5b
    (64, 96, 128, 16, 32, 32), (128, 128, 192, 32, 96, 64), (192, 96, 208, 16, 48, 64), (160, 112, 224, 24, 64, 64),
    (128, 128, 256, 24, 64, 64), (112, 144, 288, 32, 64, 64), (256, 160, 320, 32, 128, 128),
    (256, 160, 320, 32, 128, 128), (384, 192, 384, 48, 128, 128),
)  # fmt: skip


def googlenet(c: int, size: int) -> int:  # 3x3 stem to 192, nine Inception modules (BN everywhere), linear to 10
    total, channels = conv_bn(c, 192, 3), 192
    for c1, r3, c3, r5, c5, pool in GOOGLENET_MODULES:
        total += conv_bn(channels, c1, 1) + conv_bn(channels, r3, 1) + conv_bn(r3, c3, 3)
        total += conv_bn(channels, r5, 1) + conv_bn(r5, c5, 5) + conv_bn(channels, pool, 1)
        channels = c1 + c3 + c5 + pool
    return total + linear(channels, 10)


def resnet(blocks: tuple[int, ...], bottleneck: bool) -> "Counter":
    """3x3 stem (64), stages of 64/128/256/512 basic or bottleneck (x4) blocks, projection shortcuts, linear."""

    def count(c: int, size: int) -> int:
        total, channels = conv_bn(c, 64, 3), 64
        for width, n in zip((64, 128, 256, 512), blocks, strict=True):
            out = 4 * width if bottleneck else width
            for i in range(n):
                if bottleneck:
                    total += conv_bn(channels, width, 1) + conv_bn(width, width, 3) + conv_bn(width, out, 1)
                else:
                    total += conv_bn(channels, width, 3) + conv_bn(width, width, 3)
                if channels != out or (i == 0 and width != 64):  # the shape changes: a 1x1 projection
                    total += conv_bn(channels, out, 1)
                channels = out
        return total + linear(channels, 10)

    return count


def densenet(blocks: tuple[int, ...], growth: int) -> "Counter":
    """3x3 stem to 2k; dense layers BN-1x1 conv (4k)-BN-3x3 conv (k), each BN before its conv; transitions BN-1x1
    conv halving the channels; BN, linear."""

    def bn_conv(c_in: int, c_out: int, k: int) -> int:  # pre-activation: the BN normalizes the conv's input
        return 2 * c_in + conv(c_in, c_out, k, bias=False)

    def count(c: int, size: int) -> int:
        channels = 2 * growth
        total = conv(c, channels, 3, bias=False)
        for i, n in enumerate(blocks):
            for _ in range(n):
                total += bn_conv(channels, 4 * growth, 1) + bn_conv(4 * growth, growth, 3)
                channels += growth
            if i < len(blocks) - 1:
                total, channels = total + bn_conv(channels, channels // 2, 1), channels // 2
        return total + 2 * channels + linear(channels, 10)

    return count


def fastnet(c: int, size: int) -> int:  # bias-free 3x3 conv + BN: 24 | 64, 64 | 128, 128 | 256, 256; linear, no bias
    widths = (24, 64, 64, 128, 128, 256, 256)
    return sum(conv_bn(a, b, 3) for a, b in zip((c, *widths), widths, strict=False)) + linear(256, 10, bias=False)


def airnet(c: int, size: int) -> int:  # 2x2 whitening conv to 8c (with bias), conv-BN pairs 64 64 | 256 256 | 256 256
    widths = (64, 64, 256, 256, 256, 256)
    convs = sum(conv_bn(a, b, 3) for a, b in zip((8 * c, *widths), widths, strict=False))
    return conv(c, 8 * c, 2) + convs + linear(256, 10, bias=False)


Counter = Callable[[int, int], int]
COUNTERS: dict[str, Counter] = {
    "simple_cnn": simple_cnn,
    "lenet5": lenet5,
    "alexnet_cifar": alexnet_cifar,
    "alexnet_cifar7": alexnet_cifar7,
    "alexnet": alexnet,
    "vgg11": vgg((1, 1, 2, 2, 2)),
    "vgg13": vgg((2, 2, 2, 2, 2)),
    "vgg16": vgg((2, 2, 3, 3, 3)),
    "vgg19": vgg((2, 2, 4, 4, 4)),
    "nin": nin,
    "googlenet": googlenet,
    "resnet18": resnet((2, 2, 2, 2), bottleneck=False),
    "resnet34": resnet((3, 4, 6, 3), bottleneck=False),
    "resnet50": resnet((3, 4, 6, 3), bottleneck=True),
    "densenet121": densenet((6, 12, 24, 16), 32),
    "densenet_small": densenet((6, 6, 6), 12),
    "fastnet": fastnet,
    "airnet": airnet,
}
# name -> {(in_channels, image_size): parameter count}, 10 classes: RGB 32x32 (alexnet: 224x224) and gray 28x28.
EXPECTED_PARAMS: dict[str, dict[tuple[int, int], int]] = {
    name: {shape: count(*shape) for shape in ([(3, 224), (1, 224)] if name == "alexnet" else [(3, 32), (1, 28)])}
    for name, count in COUNTERS.items()
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
