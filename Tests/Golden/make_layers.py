"""Golden values for PhalanxNN's convolution and pooling layers, made with PyTorch (float64).

Run from the repository root (needs torch; CI does not, the JSON is committed):
    python3 Tests/Golden/make_layers.py > Tests/PhalanxNNTests/Resources/golden_layers.json

Each case: the layer's settings, the input, the parameters, a fixed output gradient, and
PyTorch's output, input gradient and parameter gradients. Shapes are odd on purpose.
"""
import json

import torch

torch.manual_seed(20261201)


def values(t):
    return [round(float(v), 12) for v in t.detach().reshape(-1).tolist()]


def conv_case(name, n, c, h, w, out, kernel, stride, padding, bias=True):
    x = torch.randn(n, c, h, w, dtype=torch.float64, requires_grad=True)
    layer = torch.nn.Conv2d(c, out, kernel, stride=stride, padding=padding, bias=bias).double()
    y = layer(x)
    dy = torch.randn_like(y)
    y.backward(dy)
    case = {
        "name": name, "layer": "conv2d", "input_shape": [n, c, h, w], "out_channels": out,
        "kernel": list(layer.kernel_size), "stride": list(layer.stride), "padding": list(layer.padding), "bias": bias,
        "input": values(x), "weight": values(layer.weight), "output_shape": list(y.shape), "output": values(y),
        "output_gradient": values(dy), "input_gradient": values(x.grad), "weight_gradient": values(layer.weight.grad),
    }
    if bias:
        case["bias_values"] = values(layer.bias)
        case["bias_gradient"] = values(layer.bias.grad)
    return case


def pool_case(name, kind, n, c, h, w, kernel, stride, padding):
    x = torch.randn(n, c, h, w, dtype=torch.float64, requires_grad=True)
    layer = (torch.nn.MaxPool2d if kind == "maxpool2d" else torch.nn.AvgPool2d)(kernel, stride=stride, padding=padding)
    y = layer(x)
    dy = torch.randn_like(y)
    y.backward(dy)
    pair = lambda v: list(v) if isinstance(v, (tuple, list)) else [v, v]
    return {
        "name": name, "layer": kind, "input_shape": [n, c, h, w], "kernel": pair(kernel), "stride": pair(stride), "padding": pair(padding),
        "input": values(x), "output_shape": list(y.shape), "output": values(y), "output_gradient": values(dy), "input_gradient": values(x.grad),
    }


cases = [
    conv_case("conv 3x3 stride 1 pad 1", 2, 3, 7, 5, 4, 3, 1, 1),
    conv_case("conv 3x3 stride 2 pad 1", 2, 3, 7, 6, 5, 3, 2, 1),
    conv_case("conv 2x3 stride (2,1) pad (0,1)", 3, 2, 6, 5, 3, (2, 3), (2, 1), (0, 1)),
    conv_case("conv 1x1 no bias", 2, 4, 3, 3, 2, 1, 1, 0, bias=False),
    conv_case("conv 5x5 no padding", 1, 1, 8, 8, 6, 5, 1, 0),
    pool_case("maxpool 2x2 stride 2", "maxpool2d", 2, 3, 6, 6, 2, 2, 0),
    pool_case("maxpool 3x3 stride 2 pad 1", "maxpool2d", 2, 2, 7, 5, 3, 2, 1),
    pool_case("maxpool 2x3 stride (1,2)", "maxpool2d", 1, 2, 5, 7, (2, 3), (1, 2), 0),
    pool_case("avgpool 2x2 stride 2", "avgpool2d", 2, 3, 6, 6, 2, 2, 0),
    pool_case("avgpool 3x3 stride 2 pad 1 (padding counted, as PyTorch's default)", "avgpool2d", 2, 2, 7, 5, 3, 2, 1),
]
print(json.dumps({"generator": "Tests/Golden/make_layers.py", "torch": torch.__version__, "cases": cases}))
