"""The same GoogLeNet spec in PyTorch, for the speed comparison of ``make bench`` only.

Not used by the pipeline; PyTorch is not a dependency of the project.
"""
import torch
from torch import nn
from torch.nn import functional as F


class TorchNet(nn.Module):
    """Interprets a ``models.googlenet`` spec with PyTorch layers (ceil-mode pooling)."""

    def __init__(self, spec, in_channels=3):
        super().__init__()
        self.spec = spec
        self.mods = nn.ModuleDict()
        channels = {"data": in_channels}
        flat = {}
        for layer in spec:
            p = layer.params
            key = layer.name.replace("/", "__")
            bottom = layer.bottom[0]
            if layer.type == "Convolution":
                self.mods[key] = nn.Conv2d(channels[bottom], p["num_output"], p["kernel_size"],
                                           p["stride"], p["pad"])
                channels[layer.name] = p["num_output"]
            elif layer.type == "InnerProduct":
                self.mods[key] = nn.LazyLinear(p["num_output"])
                channels[layer.name] = p["num_output"]
            elif layer.type == "Concat":
                channels[layer.name] = sum(channels[b] for b in layer.bottom)
            else:
                channels[layer.name] = channels[bottom]
            flat[layer.name] = layer.type
        with torch.no_grad():  # materialise the lazy layers
            self.forward(torch.zeros(1, in_channels, 224, 224), [spec[-1].name])

    def forward(self, x, outputs):
        blobs = {"data": x}
        for layer in self.spec:
            p = layer.params
            inp = blobs[layer.bottom[0]]
            key = layer.name.replace("/", "__")
            if layer.type == "Convolution":
                y = self.mods[key](inp)
                y = F.relu(y) if p["relu"] else y
            elif layer.type == "InnerProduct":
                y = self.mods[key](inp.flatten(1))
                y = F.relu(y) if p["relu"] else y
            elif layer.type == "Pooling":
                pool = F.max_pool2d if p["pool"] == "MAX" else F.avg_pool2d
                y = pool(inp, p["kernel_size"], p["stride"], p["pad"], ceil_mode=True)
            elif layer.type == "LRN":
                y = F.local_response_norm(inp, p["local_size"], p["alpha"], p["beta"], 1.0)
            elif layer.type == "Concat":
                y = torch.cat([blobs[b] for b in layer.bottom], 1)
            elif layer.type == "Dropout":
                y = F.dropout(inp, p["dropout_ratio"], self.training)
            else:
                y = F.softmax(inp, 1)
            blobs[layer.name] = y
        return [blobs[name] for name in outputs]
