"""Muon for every model: orthogonalized momentum updates of conv filters and hidden linear weights.

``torch.optim.Muon`` (torch 2.14) takes only 2-D parameters. Here a conv filter (out, in, k, k) is updated through
its (out, in * k * k) matrix view, the same update ``torch.optim.Muon`` gives that matrix (``tests/test_muon.py``
checks both the Newton-Schulz iteration and a whole step against torch's). The parameters Muon does not suit
(normalization scales and shifts, biases, the output layer, any frozen or 1-D tensor) are updated by SGD with
Nesterov momentum or AdamW in groups of the same optimizer, so one LR schedule scales every group in proportion and
one ``state_dict`` holds all of the state (exact resume).

DDP: each rank updates its own copy from the all-reduced gradient with no randomness and no cross-rank reduction,
so the ranks stay identical, as with SGD.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
from jsonargparse.typing import restricted_number_type
from torch import Tensor, nn
from torch.optim import Optimizer
from torch.optim.adamw import adamw
from torch.optim.sgd import sgd

AuxName = Literal["sgd", "adamw"]
IntFrom1To99 = restricted_number_type("IntFrom1To99", int, [(">=", 1), ("<=", 99)], docstring="int in [1, 99]")
NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)  # the quintic of Keller Jordan's Muon (torch.optim.Muon's defaults)


def newton_schulz(matrix: Tensor, steps: int = 5, eps: float = 1e-7) -> Tensor:
    """Approximately orthogonalize a 2-D ``matrix`` (U S V^T -> about U V^T) by ``steps`` quintic Newton-Schulz
    iterations in bfloat16, as ``torch.optim.Muon`` does (the wide orientation, Frobenius-normalized first)."""
    a, b, c = NS_COEFFICIENTS
    x = matrix.bfloat16()
    tall = matrix.size(0) > matrix.size(1)
    if tall:
        x = x.T
    x = x / x.norm().clamp(min=eps)  # spectral norm <= Frobenius norm <= 1: inside the iteration's basin
    for _ in range(steps):
        gram = x @ x.T
        x = torch.addmm(x, torch.addmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
    return x.T if tall else x


def lr_ratio(shape: torch.Size) -> float:
    """torch.optim.Muon's default per-matrix LR adjustment, sqrt(max(1, rows / columns)), of the matrix view."""
    rows = shape[0]
    return math.sqrt(max(1.0, rows / (math.prod(shape) // rows)))


def renormalize_(param: Tensor) -> None:
    """Scale ``param`` to Frobenius norm sqrt(output channels): unit norm per filter on average (airbench94_muon)."""
    param.mul_(math.sqrt(param.shape[0]) / param.norm().clamp(min=1e-12))


class Muon(Optimizer):
    """Muon on the groups marked ``muon: True``, SGD (Nesterov) or AdamW (the ``aux`` key) on the others.

    Per Muon parameter and step: momentum buffer ``B = momentum * B + (1 - momentum) * g``; the update direction
    ``(1 - momentum) * g + momentum * B`` (Nesterov) or ``B``, orthogonalized through its (out, rest) view
    (``O``); decoupled decay ``p *= 1 - lr * weight_decay``; ``p -= lr * lr_ratio * O``. With ``renorm_every``
    k > 0, every k-th step first rescales the weight to norm sqrt(out) (the 2025 CIFAR-10 recipes' weight
    normalization; the step count is optimizer state, so it resumes). With ``renorm_every_final`` K > 0 as well,
    the period grows linearly over the ``total_steps`` of the run, from k to K (the 2025 speedrun: 2 to 17): the
    weights' norms grow between rescalings, and ever more so late in the run, which lowers the update's size
    relative to the weight as the run ends.
    """

    def __init__(
        self, groups: list[dict[str, Any]], momentum: float = 0.95, nesterov: bool = True, ns_steps: int = 5,
        renorm_every: int = 0, betas: tuple[float, float] = (0.9, 0.999), renorm_every_final: int = 0,
        total_steps: int = 1,
    ) -> None:  # fmt: skip
        defaults = {"lr": 1e-3, "weight_decay": 0.0, "momentum": momentum, "nesterov": nesterov, "muon": False,
                    "aux": "sgd", "ns_steps": ns_steps, "renorm_every": renorm_every, "betas": betas}  # fmt: skip
        super().__init__(groups, defaults)
        # Not group options: a resume that extends the run sets them anew rather than restoring the old ones.
        self.renorm_every_final, self.total_steps = renorm_every_final, max(1, total_steps)

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            if group["muon"]:
                self._muon_step(group, params)
            elif group["aux"] == "sgd":
                self._sgd_step(group, params)
            else:
                self._adamw_step(group, params)
        return loss

    def _muon_step(self, group: dict[str, Any], params: list[Tensor]) -> None:
        lr, momentum, every = group["lr"], group["momentum"], group["renorm_every"]
        for p in params:
            state = self.state[p]
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = torch.zeros_like(p.grad)
                state["step"] = torch.zeros((), dtype=torch.float32)
            state["step"] += 1
            buf = state["momentum_buffer"]
            # torch.optim.Muon's averaging form: (1 - momentum) times the recipes' sum form, the same direction
            # once the Newton-Schulz iteration normalizes it.
            buf.lerp_(p.grad, 1 - momentum)
            direction = p.grad.lerp(buf, momentum) if group["nesterov"] else buf
            if every and self._renorm_due(state, every):
                renormalize_(p)
            update = newton_schulz(direction.reshape(len(direction), -1), group["ns_steps"]).view_as(p)
            p.mul_(1 - lr * group["weight_decay"])
            p.add_(update.to(p.dtype), alpha=-lr * lr_ratio(p.shape))

    def _renorm_due(self, state: dict[str, Any], every: int) -> bool:
        step = int(state["step"])
        if not self.renorm_every_final:
            return step % every == 0
        period = every + int((self.renorm_every_final - every) * step / self.total_steps)
        if step - state.get("last_renorm", 0) < period:
            return False
        state["last_renorm"] = step  # a Python int: optimizer state that stays on the host
        return True

    def _sgd_step(self, group: dict[str, Any], params: list[Tensor]) -> None:
        buffers = [self.state[p].get("momentum_buffer") for p in params]
        sgd(params, [p.grad for p in params], buffers, weight_decay=group["weight_decay"], momentum=group["momentum"],
            lr=group["lr"], dampening=0.0, nesterov=group["nesterov"], maximize=False)  # fmt: skip
        for p, buf in zip(params, buffers, strict=True):
            self.state[p]["momentum_buffer"] = buf

    def _adamw_step(self, group: dict[str, Any], params: list[Tensor]) -> None:
        for p in params:
            if "exp_avg" not in self.state[p]:
                self.state[p].update(step=torch.zeros((), dtype=torch.float32), exp_avg=torch.zeros_like(p),
                                     exp_avg_sq=torch.zeros_like(p))  # fmt: skip
        states = [self.state[p] for p in params]
        beta1, beta2 = group["betas"]
        adamw(params, [p.grad for p in params], [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states], [],
              [s["step"] for s in states], amsgrad=False, beta1=beta1, beta2=beta2, lr=group["lr"],
              weight_decay=group["weight_decay"], eps=1e-8, maximize=False)  # fmt: skip


def muon_param_names(model: nn.Module, head: nn.Module | None) -> set[str]:
    """Names of the trained parameters Muon updates: the weights of convolutions and linear layers, except
    ``head`` (the output layer: its rows are classes, not features) and frozen ones."""
    head_ids = {id(p) for p in head.parameters()} if head is not None else set()
    names = set()
    for module_name, module in model.named_modules():
        if not isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
            continue
        weight = module.weight
        if weight.requires_grad and weight.ndim >= 2 and id(weight) not in head_ids:
            names.add(f"{module_name}.weight" if module_name else "weight")
    return names


def output_layer(model: nn.Module) -> nn.Module | None:
    """The last linear layer registered in ``model``: the classifier head of every zoo network."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if linears:
        return linears[-1]
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]  # NiN and other all-conv heads
    return convs[-1] if convs else None


def muon_groups(groups: list[dict[str, Any]], model: nn.Module, lr: float, momentum: float, weight_decay: float,
                aux: AuxName) -> list[dict[str, Any]]:  # fmt: skip
    """``groups`` (from ``optim.param_groups``, each with its ``lr``) with their Muon parameters moved into one
    group of LR ``lr``, momentum ``momentum`` and decay ``weight_decay``, first; the rest stay where they were,
    updated by ``aux`` with the optimizer's default momentum."""
    names = muon_param_names(model, output_layer(model))
    ids = {id(p) for n, p in model.named_parameters() if n in names}
    matrices = [p for g in groups for p in g["params"] if id(p) in ids]
    rest = [{**g, "params": [p for p in g["params"] if id(p) not in ids], "muon": False, "aux": aux} for g in groups]
    muon = {"params": matrices, "lr": lr, "momentum": momentum, "weight_decay": weight_decay, "muon": True}
    return [muon, *(g for g in rest if g["params"])]
