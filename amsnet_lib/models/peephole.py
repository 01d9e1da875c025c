"""Bidirectional LSTM with peephole connections (Graves, Jaitly & Mohamed 2013).

PyTorch's ``nn.LSTM`` has no peepholes, so FRLM (paper §3.2) needs its own cell::

    i_t = σ(W_xi x_t + W_hi h_{t-1} + w_ci ⊙ c_{t-1} + b_i)
    f_t = σ(W_xf x_t + W_hf h_{t-1} + w_cf ⊙ c_{t-1} + b_f)
    g_t = tanh(W_xc x_t + W_hc h_{t-1} + b_c)
    c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
    o_t = σ(W_xo x_t + W_ho h_{t-1} + w_co ⊙ c_t + b_o)      # sees c_t, not c_{t-1}
    h_t = o_t ⊙ tanh(c_t)

The peephole weights w_c* are diagonal (one number per unit), as in the paper.

Speed (CPU): a Python loop with autograd records ~20 ops per step and replays them in
backward; instead
  * the input projections of all steps and both directions are ONE matmul;
  * both directions run in the same time loop, stacked on a leading ``dirs`` axis, so each
    step is one ``baddbmm`` plus a handful of element-wise ops on (dirs, B, ·) tensors;
  * the recurrence is a custom ``autograd.Function`` with a hand-written backward (BPTT):
    the parts of the gate derivatives that do not depend on the incoming gradient are
    computed for all steps at once, the weight gradients are big matmuls after the loop;
  * the loop stops at the longest sequence of the batch.
Without gradients (inference, export) the same forward loop runs as plain tensor ops.

Padding: sequences are left-aligned (``mask`` True on a prefix of each row). The backward
direction reverses each sequence within its own length, so it starts at the last valid
frame, not in the padding; outputs at padded positions are zero. Steps past a sequence's end
compute values that are never read by a valid step and are zeroed/ignored, so no masking is
needed inside the recurrence.

Init: every weight and bias ~ U(-1/√H, 1/√H) like ``nn.LSTM`` (peepholes included), then the
forget-gate bias is set to 1.0 (Gers et al. 2000; helps gradients flow early in training).
There is one bias per gate (``nn.LSTM``'s b_ih + b_hh pair is redundant).
"""
from __future__ import annotations

import math
import os
from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F


def _recurrence_forward(gx: torch.Tensor, w_hh: torch.Tensor, w_peep: torch.Tensor):
    """Run the peephole recurrence for all directions at once.

    Args:
        gx: (dirs, T, B, 4H) input projections incl. bias, gate order i, f, g, o, already
            time-reversed (within each length) for the backward direction.
        w_hh: (dirs, 4H, H) recurrent weights.
        w_peep: (dirs, 3, H) peephole weights w_ci, w_cf, w_co.

    Returns:
        hs (dirs, T, B, H) outputs h_t; and, for the backward pass, gates (dirs, T, B, 4H)
        post-activation i, f, g, o, cells (dirs, T+1, B, H) with c_{-1} = 0 at index 0,
        tanh_c (dirs, T, B, H) = tanh(c_t).
    """
    dirs, T, B, G = gx.shape
    H = G // 4
    gates = torch.empty_like(gx)
    cells = gx.new_zeros(dirs, T + 1, B, H)
    tanh_c = gx.new_empty(dirs, T, B, H)
    hs = gx.new_empty(dirs, T, B, H)
    h_prev = gx.new_zeros(dirs, B, H)
    w_hh_t = w_hh.transpose(1, 2)  # (dirs, H, 4H)
    w_cif = w_peep[:, :2].unsqueeze(1)  # (dirs, 1, 2, H): w_ci, w_cf
    w_co = w_peep[:, 2].unsqueeze(1)  # (dirs, 1, H)
    for t in range(T):
        a = torch.baddbmm(gx[:, t], h_prev, w_hh_t)  # (dirs, B, 4H) pre-activations, fresh
        c_prev, c = cells[:, t], cells[:, t + 1]
        i, f, g, o = gates[:, t].chunk(4, dim=-1)
        # input and forget gates peep at c(t-1): one op for both
        a[..., :2 * H].view(dirs, B, 2, H).addcmul_(w_cif, c_prev.unsqueeze(2))
        torch.sigmoid(a[..., :2 * H], out=gates[:, t, :, :2 * H])
        torch.tanh(a[..., 2 * H:3 * H], out=g)
        torch.addcmul(f * c_prev, i, g, out=c)
        # the output gate peeps at c(t), which only exists now
        torch.sigmoid(a[..., 3 * H:].addcmul_(w_co, c), out=o)
        torch.mul(o, torch.tanh(c, out=tanh_c[:, t]), out=hs[:, t])
        h_prev = hs[:, t]
    return hs, gates, cells, tanh_c


def _recurrence_export(gx: torch.Tensor, w_hh: torch.Tensor, w_peep: torch.Tensor) -> torch.Tensor:
    """:func:`_recurrence_forward`'s outputs ``hs (dirs, T, B, H)`` for ``torch.export`` (the ONNX export),
    as one ``scan`` over time (an ONNX ``Scan`` node) rather than a Python loop.

    A Python loop is unrolled by the exporter into ~20 ops per frame, each traced twice with a
    symbolic batch size: ~25 CPU-s for a 1-s window, ~70 s for 3 s. The scan traces one step; ONNX
    Runtime then runs it as fast as the unrolled graph (and the export still checks it against the
    eager model). No writes into preallocated tensors: the exporter turns each into a scatter over
    the whole tensor, which made an earlier ONNX graph 3x slower than the eager model."""
    from torch._higher_order_ops.scan import scan

    dirs, T, B, G = gx.shape
    H = G // 4
    w_hh_t = w_hh.transpose(1, 2)

    def step(carry, x_t):
        h, c = carry
        # sliced inside the step: a (dirs, 1, H) tensor captured from outside is traced with a
        # symbolic size in place of its 1, which then cannot broadcast against the batch
        w_ci, w_cf, w_co = (w_peep[:, k].unsqueeze(1) for k in range(3))
        a_i, a_f, a_g, a_o = torch.baddbmm(x_t, h, w_hh_t).chunk(4, dim=-1)
        i = torch.sigmoid(a_i + w_ci * c)
        f = torch.sigmoid(a_f + w_cf * c)
        c = f * c + i * torch.tanh(a_g)
        h = torch.sigmoid(a_o + w_co * c) * torch.tanh(c)
        return (h, c), h.clone()  # scan refuses an output that aliases the carry

    init = (gx.new_zeros(dirs, B, H), gx.new_zeros(dirs, B, H))
    _, hs = scan(step, init, gx.transpose(0, 1))  # over dim 0: (T, dirs, B, 4H)
    return hs.transpose(0, 1)


# --------------------------------------------------------------------------- CUDA graphs
# On a GPU the time loops above are launch-bound: ~16 tiny kernels per step, each costing more
# to launch from Python than to run. A CUDA graph records a loop's kernels once per shape and
# replays them with one launch. Each graph holds its own copies of the inputs and outputs (about
# 1.5 GB for forward + backward at batch 256, 300 frames, 128 units), so only a few shapes are
# kept and large ones are not graphed. AMSNET_CUDA_GRAPHS=0 turns this off.
_GRAPHS: "OrderedDict[tuple, tuple]" = OrderedDict()
_MAX_GRAPHS = 4
_GRAPH_STEP = 50  # frames (0.5 s of IS10 frames): the run length is rounded up to a multiple
_MAX_GRAPH_BYTES = 2 << 30


def _graphs_enabled(t: torch.Tensor) -> bool:
    return t.is_cuda and os.environ.get("AMSNET_CUDA_GRAPHS", "1") != "0" and not torch.cuda.is_current_stream_capturing()


def _run_step(x: torch.Tensor) -> int:
    """Frames the recurrence's run length is rounded up to: _GRAPH_STEP when training with graphs."""
    return _GRAPH_STEP if torch.is_grad_enabled() and _graphs_enabled(x) else 1


def _graphed(name: str, fn, *args: torch.Tensor, out_bytes: int) -> tuple:
    """``fn(*args)`` run as a CUDA graph captured for these shapes; returns fresh copies of its outputs.

    The outputs are copied out of the graph's buffers because the next replay overwrites them
    while autograd may still hold the previous ones. Falls back to a plain call for shapes whose
    buffers would exceed ``_MAX_GRAPH_BYTES``.
    """
    in_bytes = sum(a.numel() * a.element_size() for a in args)
    if in_bytes + out_bytes > _MAX_GRAPH_BYTES:
        return fn(*args)
    key = (name, torch.cuda.current_device()) + tuple((tuple(a.shape), a.dtype) for a in args)
    entry = _GRAPHS.get(key)
    if entry is None:
        static_in = [a.detach().clone() for a in args]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm-up (cuBLAS handles, workspaces) outside the capture
            fn(*static_in)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out = fn(*static_in)
        entry = _GRAPHS[key] = (graph, static_in, static_out)
        while len(_GRAPHS) > _MAX_GRAPHS:
            _GRAPHS.popitem(last=False)
    _GRAPHS.move_to_end(key)
    graph, static_in, static_out = entry
    for dst, src in zip(static_in, args):
        dst.copy_(src)
    graph.replay()
    return tuple(o.clone() for o in static_out)


def _recurrence_backward(grad_h, w_hh, w_peep, hs, gates, cells, tanh_c):
    """Gradients of the recurrence w.r.t. gx, w_hh, w_peep (BPTT; see _PeepholeRecurrence)."""
    dirs, T, B, G = gates.shape
    H = G // 4
    w_ci, w_cf, w_co = (w_peep[:, k].unsqueeze(1).unsqueeze(1) for k in range(3))
    i, f, g, o = gates.chunk(4, dim=-1)  # each (dirs, T, B, H)
    c_prev = cells[:, :T]
    # Everything that does not depend on the incoming gradients is computed for all
    # steps at once, leaving 5 small ops + 1 matmul per step in the loop. With
    #   da_i = dc·K_i, da_f = dc·K_f, da_g = dc·K_g, da_o = dh·K_o      (pre-activations)
    #   dc   = dc_next + dh·M      (h = o·tanh c, and o peeps at c through w_co)
    #   dc_prev = dc·N             (c_t = f·c_{t-1} + ..., and i, f peep at c_{t-1})
    k_o = tanh_c * o * (1 - o)
    k_i = g * i * (1 - i)
    k_f = c_prev * f * (1 - f)
    M = torch.addcmul(o * (1 - tanh_c * tanh_c), k_o, w_co)
    N = f + k_i * w_ci + k_f * w_cf
    # d_pre holds the K coefficients, then is turned into dL/d(pre-activation) step by step
    d_pre = torch.cat([k_i, k_f, i * (1 - g * g), k_o], dim=-1)
    del k_o, k_i, k_f
    dh_next = grad_h.new_zeros(dirs, B, H)
    dc_next = grad_h.new_zeros(dirs, B, H)
    for t in range(T - 1, -1, -1):
        dh = grad_h[:, t] + dh_next
        dc = torch.addcmul(dc_next, dh, M[:, t])
        d_pre[:, t, :, :3 * H].view(dirs, B, 3, H).mul_(dc.unsqueeze(2))
        d_pre[:, t, :, 3 * H:].mul_(dh)
        dc_next = dc * N[:, t]
        dh_next = torch.bmm(d_pre[:, t], w_hh)  # (dirs, B, 4H) @ (dirs, 4H, H)
    # Weight gradients as single matmuls over all (t, b), not per-step accumulation:
    # dW_hh = Σ_t da_t h_{t-1}ᵀ (h_{-1} = 0, so step 0 adds nothing).
    d_w_hh = torch.bmm(
        d_pre[:, 1:].reshape(dirs, (T - 1) * B, G).transpose(1, 2),
        hs[:, :T - 1].reshape(dirs, (T - 1) * B, H),
    )
    d_w_peep = torch.stack(
        [
            (d_pre[..., :H] * c_prev).sum(dim=(1, 2)),
            (d_pre[..., H:2 * H] * c_prev).sum(dim=(1, 2)),
            (d_pre[..., 3 * H:] * cells[:, 1:]).sum(dim=(1, 2)),
        ],
        dim=1,
    )
    return d_pre, d_w_hh, d_w_peep


class _PeepholeRecurrence(torch.autograd.Function):
    """Autograd wrapper: forward via :func:`_recurrence_forward`, backward written by hand
    (:func:`_recurrence_backward`); both as CUDA graphs on a GPU."""

    @staticmethod
    def forward(ctx, gx, w_hh, w_peep):
        if _graphs_enabled(gx):
            dirs, T, B, G = gx.shape
            out_bytes = gx.element_size() * dirs * B * (T * G + (T + 1) * G // 4 + 2 * T * G // 4)
            hs, gates, cells, tanh_c = _graphed("forward", _recurrence_forward, gx, w_hh, w_peep, out_bytes=out_bytes)
        else:
            hs, gates, cells, tanh_c = _recurrence_forward(gx, w_hh, w_peep)
        ctx.save_for_backward(w_hh, w_peep, hs, gates, cells, tanh_c)
        return hs

    @staticmethod
    def backward(ctx, grad_h):
        saved = ctx.saved_tensors
        grad_h = grad_h.contiguous()
        if _graphs_enabled(grad_h):
            gates = saved[3]
            return _graphed("backward", _recurrence_backward, grad_h, *saved, out_bytes=3 * gates.numel() * gates.element_size())
        return _recurrence_backward(grad_h, *saved)


def _source_times(lengths: torch.Tensor, T: int, dirs: int) -> torch.Tensor:
    """(dirs, T, B): the frame each direction reads at step t.

    Direction 0 reads frame t; direction 1 reads frame len-1-t while t < len (each sequence
    reversed within its own length) and frame t in the padding. The reversal is its own
    inverse, so the same index also puts the backward outputs back in time order.
    """
    t = torch.arange(T, device=lengths.device).unsqueeze(1).expand(T, lengths.shape[0])
    return torch.stack([t, reverse_index(lengths, T).T][:dirs])


def reverse_index(lengths: torch.Tensor, T: int) -> torch.Tensor:
    """(B, T) time index reversing each row within its length, padding left in place.

    ``x.gather(1, idx[..., None].expand_as(x))`` reverses a (B, T, D) batch; applying it
    twice is the identity.
    """
    t = torch.arange(T, device=lengths.device).unsqueeze(0)
    rev = lengths.unsqueeze(1) - 1 - t
    return torch.where(rev >= 0, rev, t)


def _check_prefix(mask: torch.Tensor, lengths: torch.Tensor) -> None:
    prefix = torch.arange(mask.shape[1], device=mask.device).unsqueeze(0) < lengths.unsqueeze(1)
    if not torch.equal(mask, prefix):
        raise ValueError(
            "PeepholeLSTM: mask must be True on a prefix of each row (left-aligned padding). "
            "Fix: put the valid frames first and pad at the end."
        )


class PeepholeLSTM(nn.Module):
    """One (bi)directional peephole LSTM layer, batch-first, for left-aligned padded batches.

    Args:
        input_size: D, features per frame.
        hidden_size: H, units per direction.
        bidirectional: run a second, time-reversed direction and concatenate (paper eq 1).

    Parameters (``dirs`` = 2 or 1; gate order i, f, g, o as in ``nn.LSTM``):
        weight_ih (dirs, 4H, D), weight_hh (dirs, 4H, H), bias (dirs, 4H),
        weight_peep (dirs, 3, H) = diagonal w_ci, w_cf, w_co.
    """

    def __init__(self, input_size: int, hidden_size: int, bidirectional: bool = True):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bidirectional = bidirectional
        dirs = 2 if bidirectional else 1
        H = hidden_size
        self.weight_ih = nn.Parameter(torch.empty(dirs, 4 * H, input_size))
        self.weight_hh = nn.Parameter(torch.empty(dirs, 4 * H, H))
        self.bias = nn.Parameter(torch.empty(dirs, 4 * H))
        self.weight_peep = nn.Parameter(torch.empty(dirs, 3, H))
        self.reset_parameters()

    @property
    def output_size(self) -> int:
        return self.hidden_size * (2 if self.bidirectional else 1)

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)
        with torch.no_grad():
            self.bias[:, self.hidden_size:2 * self.hidden_size].fill_(1.0)  # forget gate

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, T, D) float, mask (B, T) bool True on valid frames -> (B, T, H·dirs).

        ``mask=None`` means every frame is valid. Padded positions of the output are 0.
        """
        B, T, _ = x.shape
        dirs, H = self.weight_hh.shape[0], self.hidden_size
        if mask is None:
            mask = torch.ones(B, T, dtype=torch.bool, device=x.device)
        lengths = mask.sum(dim=1)
        if not torch.compiler.is_compiling():
            _check_prefix(mask, lengths)
        # Steps past the longest sequence would only compute padding: cut them off. With CUDA
        # graphs (one per shape) the cut is rounded up to a multiple of _GRAPH_STEP frames, so that
        # batches of varying length share a few graphs instead of capturing one each; the extra
        # steps run on padding and change no valid output or gradient (tested).
        step = _run_step(x)
        if torch.compiler.is_exporting():
            # torch.export (the ONNX export) cannot make the run length depend on the data: all T
            # steps run, as in the traced TorchScript module, with the same valid outputs.
            T_run = T
        else:
            T_run = min(T, -(-max(int(lengths.max()), 1) // step) * step)
        x_run, mask_run = x[:, :T_run], mask[:, :T_run]
        src = _source_times(lengths, T_run, dirs)  # (dirs, T, B)
        b = torch.arange(B, device=x.device)

        # Time-major, per-direction copies of the (narrow, D-wide) input, the backward one
        # reversed within each length; then all input projections as ONE batched matmul.
        xs = x_run.reshape(B * T_run, -1).index_select(0, (b * T_run + src).reshape(-1))
        gx = torch.baddbmm(
            self.bias.unsqueeze(1), xs.view(dirs, T_run * B, -1), self.weight_ih.transpose(1, 2)
        ).view(dirs, T_run, B, 4 * H)

        if torch.is_grad_enabled() and any(
            t.requires_grad for t in (gx, self.weight_hh, self.weight_peep)
        ):
            h = _PeepholeRecurrence.apply(gx, self.weight_hh, self.weight_peep)
        elif torch.compiler.is_exporting():
            h = _recurrence_export(gx, self.weight_hh, self.weight_peep)
        else:
            h = _recurrence_forward(gx, self.weight_hh, self.weight_peep)[0]

        # Back to batch-first (B, T, dirs·H), the backward direction back in time order:
        # output (b, t, d) is row (d, src[d, t, b], b) of h.
        d = torch.arange(dirs, device=x.device).view(dirs, 1, 1)
        rows = (d * T_run + src) * B + b  # (dirs, T, B)
        out = h.reshape(dirs * T_run * B, H).index_select(0, rows.permute(2, 1, 0).reshape(-1))
        out = out.view(B, T_run, dirs * H).masked_fill(~mask_run.unsqueeze(-1), 0.0)
        if T_run < T:
            out = F.pad(out, (0, 0, 0, T - T_run))
        return out

    def extra_repr(self) -> str:
        return (
            f"{self.input_size}, {self.hidden_size}, bidirectional={self.bidirectional}, "
            "peephole=True"
        )
