"""Small layers shared by the item encoders, fusions and sequence models."""
import numpy as np
import torch
import torch.nn as nn


class Dropout(nn.Dropout):
    """`nn.Dropout`, with its mask drawn by numpy's PCG64 on a CPU.

    Torch's CPU generator makes ~100 million numbers a second, one at a time: at the workshop size the dropout
    masks were a fifth of a training step. PCG64 draws the same mask (each element kept with probability 1 - p,
    to 1/65536) about five times faster. Its seed is one draw of torch's generator per call, so
    `torch.manual_seed` still makes a run repeatable and a checkpoint's random state still resumes it exactly.
    On other devices (CUDA's generator is fast) and in evaluation it is `nn.Dropout` itself.
    """

    def forward(self, x):
        if not self.training or self.p == 0 or x.device.type != "cpu" or self.inplace:
            return super().forward(x)
        if self.p == 1:
            return torch.zeros_like(x)
        seed = int(torch.randint(0, 2**63 - 1, ()))
        bits = np.random.Generator(np.random.PCG64(seed)).integers(0, 2**16, x.shape, dtype=np.uint16)
        scale = (bits >= round(self.p * 2**16)) * np.float32(1 / (1 - self.p))  # 0 or 1/(1-p); float: a bool
        return x * torch.from_numpy(scale)  # mask would cost a conversion in each multiply, forward and backward


def fast_dropout(model):
    """Every `nn.Dropout` in `model` (the kit's own layers and those inside Hugging Face and timm encoders) becomes
    a `Dropout`: the same layer with the same probability, a faster mask on a CPU. Returns `model`."""
    for module in model.modules():
        if type(module) is nn.Dropout:
            module.__class__ = Dropout
    return model
