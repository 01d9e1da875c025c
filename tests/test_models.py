"""Models: the peephole LSTM against a step-by-step reference, masking, shapes, fusion, seeds."""
from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn as nn

from amsnet_lib.config import CLASSIC_MODELS, MODELS, FRLMConfig, FusionConfig, URLMConfig
from amsnet_lib.models import NETWORKS
from amsnet_lib.models import (
    AMSNet, ConcatHead, ConnectionAttentionHead, EarlyFusion, FRLM, LateFusionHead, PeepholeLSTM,
    PlainBLSTM, SEBlock, URLM, align_spectrogram, build_model, call_model, count_parameters,
)
from amsnet_lib.models.peephole import _PeepholeRecurrence

SMALL_FRLM = FRLMConfig(input_dim=5, hidden_size=6, embedding_dim=16)
SMALL_URLM = URLMConfig(input_channels=4, filters=(12, 8, 8), se_ratio=4, embedding_dim=16)
SMALL_FUSION = FusionConfig(hidden=(8, 4))


def _mask(lengths, T):
    return torch.arange(T).unsqueeze(0) < torch.as_tensor(lengths).unsqueeze(1)


def _inputs(B=4, T=9, D=5, n_mels=4, T_spec=5, lengths=(9, 3, 6, 1), seed=0):
    g = torch.Generator().manual_seed(seed)
    frames = torch.randn(B, T, D, generator=g)
    mask = _mask(lengths, T)
    frames = frames.masked_fill(~mask.unsqueeze(-1), 0.0)
    spec = torch.randn(B, n_mels, T_spec, generator=g)
    return {"frames": frames, "mask": mask, "spec": spec}


# --------------------------------------------------------------------------- peephole LSTM


def reference_peephole(lstm: PeepholeLSTM, x: torch.Tensor, lengths) -> torch.Tensor:
    """Graves et al. (2013) equations, one sequence and one step at a time, no tricks.

    The backward direction reads frames len-1 ... 0 of each sequence; padding stays 0.
    """
    B, T, _ = x.shape
    H = lstm.hidden_size
    dirs = 2 if lstm.bidirectional else 1
    out = x.new_zeros(B, T, dirs * H)
    for b in range(B):
        for d in range(dirs):
            w_ih, w_hh, bias = lstm.weight_ih[d], lstm.weight_hh[d], lstm.bias[d]
            w_ci, w_cf, w_co = lstm.weight_peep[d]
            h, c = x.new_zeros(H), x.new_zeros(H)
            steps = range(lengths[b]) if d == 0 else reversed(range(lengths[b]))
            for t in steps:
                z_i, z_f, z_g, z_o = (w_ih @ x[b, t] + w_hh @ h + bias).split(H)
                i = torch.sigmoid(z_i + w_ci * c)  # c is still c(t-1) here
                f = torch.sigmoid(z_f + w_cf * c)
                c = f * c + i * torch.tanh(z_g)
                o = torch.sigmoid(z_o + w_co * c)  # output gate sees c(t)
                h = o * torch.tanh(c)
                out[b, t, d * H:(d + 1) * H] = h
    return out


def _random_peephole(D=5, H=4, bidirectional=True, seed=0):
    torch.manual_seed(seed)
    lstm = PeepholeLSTM(D, H, bidirectional=bidirectional).double()
    with torch.no_grad():  # large peepholes and biases so that every term matters
        for p in lstm.parameters():
            p.uniform_(-1.0, 1.0)
    return lstm


@pytest.mark.parametrize("bidirectional", [True, False])
def test_peephole_matches_stepwise_reference_outputs_and_gradients(bidirectional):
    lengths = [7, 3, 5, 1]
    lstm = _random_peephole(bidirectional=bidirectional)
    ref = _random_peephole(bidirectional=bidirectional)
    x = torch.randn(4, 7, 5, dtype=torch.double, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_(True)
    weights = torch.randn(4, 7, lstm.output_size, dtype=torch.double)

    out = lstm(x, _mask(lengths, 7))
    expected = reference_peephole(ref, x_ref, lengths)
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-12)

    (out * weights).sum().backward()
    (expected * weights).sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-9, atol=1e-11)
    for (name, p), p_ref in zip(lstm.named_parameters(), ref.parameters()):
        assert p.grad is not None and p.grad.abs().sum() > 0, name
        torch.testing.assert_close(p.grad, p_ref.grad, rtol=1e-9, atol=1e-11, msg=name)
    # padded frames get no gradient: they never reach a valid output
    assert x.grad[1, 3:].abs().max() == 0 and x.grad[3, 1:].abs().max() == 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (CUDA graphs)")
def test_peephole_cuda_graphs_match_the_reference_on_every_replay(monkeypatch):
    """On a GPU the recurrence runs as captured CUDA graphs: each call (the capture, then replays
    with new values, then another shape) must give the step-by-step reference's outputs and
    gradients, and an earlier call's outputs must survive later replays."""
    from amsnet_lib.models import peephole

    peephole._GRAPHS.clear()
    lstm = _random_peephole(H=6).cuda()
    ref = _random_peephole(H=6)
    results = []
    for seed, (B, T, lengths) in enumerate([(4, 7, [7, 3, 5, 1]), (4, 7, [6, 7, 2, 4]), (4, 7, [7, 7, 1, 3]),
                                           (3, 5, [5, 2, 4])]):
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(B, T, 5, dtype=torch.double, generator=g)
        w = torch.randn(B, T, lstm.output_size, dtype=torch.double, generator=g)
        xg = x.cuda().requires_grad_(True)
        lstm.zero_grad(set_to_none=True)
        out = lstm(xg, _mask(lengths, T).cuda())
        (out * w.cuda()).sum().backward()
        ref.zero_grad(set_to_none=True)
        x_ref = x.clone().requires_grad_(True)
        expected = reference_peephole(ref, x_ref, lengths)
        (expected * w).sum().backward()
        torch.testing.assert_close(out.cpu(), expected, rtol=1e-9, atol=1e-11)
        torch.testing.assert_close(xg.grad.cpu(), x_ref.grad, rtol=1e-8, atol=1e-10)
        for (name, p), p_ref in zip(lstm.named_parameters(), ref.parameters()):
            torch.testing.assert_close(p.grad.cpu(), p_ref.grad, rtol=1e-8, atol=1e-10, msg=name)
        results.append((out.detach(), expected.detach()))
    assert len(peephole._GRAPHS) == 4  # forward and backward, two shapes
    for out, expected in results:  # copies, not the graphs' buffers that later replays overwrote
        torch.testing.assert_close(out.cpu(), expected, rtol=1e-9, atol=1e-11)
    monkeypatch.setenv("AMSNET_CUDA_GRAPHS", "0")
    peephole._GRAPHS.clear()
    lstm(xg, _mask(lengths, T).cuda()).sum().backward()
    assert not peephole._GRAPHS


def test_peephole_recurrence_gradcheck():
    g = torch.Generator().manual_seed(1)
    args = [torch.randn(*s, generator=g, dtype=torch.double).requires_grad_(True)
            for s in [(2, 4, 3, 8), (2, 8, 2), (2, 3, 2)]]
    assert torch.autograd.gradcheck(_PeepholeRecurrence.apply, args)


def test_peephole_without_peepholes_equals_nn_lstm():
    """Zero peephole weights turn the cell into nn.LSTM: checks gate order and padding."""
    torch.manual_seed(0)
    lstm = PeepholeLSTM(5, 4)
    with torch.no_grad():
        lstm.weight_peep.zero_()
    plain = nn.LSTM(5, 4, batch_first=True, bidirectional=True)
    with torch.no_grad():
        for d, sfx in enumerate(["", "_reverse"]):
            getattr(plain, "weight_ih_l0" + sfx).copy_(lstm.weight_ih[d])
            getattr(plain, "weight_hh_l0" + sfx).copy_(lstm.weight_hh[d])
            getattr(plain, "bias_ih_l0" + sfx).copy_(lstm.bias[d])
            getattr(plain, "bias_hh_l0" + sfx).zero_()
    lengths = torch.tensor([6, 2, 4])
    x = torch.randn(3, 6, 5)
    packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    expected = nn.utils.rnn.pad_packed_sequence(plain(packed)[0], batch_first=True, total_length=6)[0]
    torch.testing.assert_close(lstm(x, _mask(lengths, 6)), expected, rtol=1e-5, atol=1e-6)


def test_plain_blstm_equals_packed_nn_lstm():
    """FRLM's peephole=False path handles padding like a packed bidirectional nn.LSTM."""
    torch.manual_seed(0)
    blstm = PlainBLSTM(5, 4)
    plain = nn.LSTM(5, 4, batch_first=True, bidirectional=True)
    with torch.no_grad():
        for sfx, lstm in [("", blstm.forward_lstm), ("_reverse", blstm.backward_lstm)]:
            for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
                getattr(plain, name + sfx).copy_(getattr(lstm, name))
    lengths = torch.tensor([5, 2, 4])
    x = torch.randn(3, 6, 5)  # longest sequence shorter than T: output padded back to T
    packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    expected = nn.utils.rnn.pad_packed_sequence(plain(packed)[0], batch_first=True, total_length=6)[0]
    torch.testing.assert_close(blstm(x, _mask(lengths, 6)), expected, rtol=1e-5, atol=1e-6)


def test_peephole_padding_is_invisible():
    """A sequence gives the same outputs alone and inside a padded batch, whatever the padding."""
    torch.manual_seed(0)
    lstm = PeepholeLSTM(5, 4)
    x = torch.randn(3, 8, 5)
    mask = _mask([8, 3, 5], 8)
    out = lstm(x, mask)
    alone = lstm(x[1:2, :3], None)
    torch.testing.assert_close(out[1:2, :3], alone)
    noisy = torch.where(mask.unsqueeze(-1), x, torch.randn_like(x) * 100)
    torch.testing.assert_close(lstm(noisy, mask), out)
    assert out[1, 3:].abs().max() == 0 and out[2, 5:].abs().max() == 0
    # the backward half at a sequence's last valid frame has seen that frame only
    last = lstm(x[1:2, 2:3], None)
    torch.testing.assert_close(out[1, 2, 4:], last[0, 0, 4:])


def test_peephole_extra_padded_steps_change_nothing(monkeypatch):
    """With CUDA graphs the run length is rounded up (fewer distinct shapes): the extra steps run
    on padding only, so outputs are identical and gradients equal."""
    from amsnet_lib.models import peephole

    lstm = _random_peephole()
    x = torch.randn(4, 12, 5, dtype=torch.double)
    mask, w = _mask([6, 3, 5, 1], 12), torch.randn(4, 12, lstm.output_size, dtype=torch.double)
    results = []
    for step in (1, 4, 50):  # run length 6, 8, 12 (capped at T)
        monkeypatch.setattr(peephole, "_run_step", lambda x, step=step: step)
        xg = x.clone().requires_grad_(True)
        lstm.zero_grad(set_to_none=True)
        out = lstm(xg, mask)
        (out * w).sum().backward()
        results.append((out.detach(), xg.grad, [p.grad.clone() for p in lstm.parameters()]))
    for out, gx, gp in results[1:]:
        torch.testing.assert_close(out, results[0][0], rtol=0, atol=0)
        torch.testing.assert_close(gx, results[0][1], rtol=0, atol=0)
        for a, b in zip(gp, results[0][2]):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


def test_peephole_inference_path_equals_training_path():
    torch.manual_seed(0)
    lstm = PeepholeLSTM(5, 4)
    x, mask = torch.randn(3, 6, 5), _mask([6, 2, 4], 6)
    with torch.no_grad():
        fast = lstm(x, mask)
    torch.testing.assert_close(lstm(x, mask), fast, rtol=0, atol=0)


def test_peephole_rejects_non_prefix_mask():
    lstm = PeepholeLSTM(5, 4)
    mask = torch.tensor([[True, False, True]])
    with pytest.raises(ValueError, match="prefix"):
        lstm(torch.randn(1, 3, 5), mask)


def test_peephole_forget_bias_init():
    lstm = PeepholeLSTM(5, 4)
    assert torch.all(lstm.bias[:, 4:8] == 1.0)
    assert lstm.weight_peep.shape == (2, 3, 4)  # diagonal w_ci, w_cf, w_co per direction


# --------------------------------------------------------------------------- FRLM attention


@pytest.mark.parametrize("peephole", [True, False])
def test_frlm_ignores_padded_frames(peephole):
    torch.manual_seed(0)
    model = FRLM(dataclasses.replace(SMALL_FRLM, peephole=peephole), n_classes=3).eval()
    b = _inputs()
    noisy = torch.where(b["mask"].unsqueeze(-1), b["frames"], torch.randn_like(b["frames"]) * 50)
    torch.testing.assert_close(model(noisy, b["mask"]), model(b["frames"], b["mask"]))
    alpha = model.attention(b["frames"], b["mask"])
    assert alpha.shape == (4, 9)
    torch.testing.assert_close(alpha.sum(1), torch.ones(4))
    assert alpha[~b["mask"]].abs().max() == 0
    assert torch.all(alpha[3, 0] == 1.0)  # one valid frame takes all the weight
    # a sequence scores the same alone as in the padded batch
    torch.testing.assert_close(model(b["frames"][1:2, :3], b["mask"][1:2, :3]),
                               model(b["frames"], b["mask"])[1:2])


def test_attention_pooling_is_eqs_2_to_4():
    torch.manual_seed(0)
    model = FRLM(SMALL_FRLM, n_classes=3).eval()
    b = _inputs()
    h = model.blstm(b["frames"], b["mask"])
    r, alpha = model.pool(h, b["mask"])
    scores = torch.tanh(h) @ model.pool.w
    for i, L in enumerate(b["mask"].sum(1).tolist()):
        a = torch.softmax(scores[i, :L], 0)
        torch.testing.assert_close(alpha[i, :L], a)
        torch.testing.assert_close(r[i], (h[i, :L] * a.unsqueeze(1)).sum(0))


# --------------------------------------------------------------------------- URLM


def test_se_block_scales_channels():
    torch.manual_seed(0)
    se = SEBlock(8, ratio=2)
    x = torch.randn(3, 8, 10)
    s = se.gates(x)
    assert s.shape == (3, 8) and torch.all((s > 0) & (s < 1))
    torch.testing.assert_close(se(x), x * s.unsqueeze(-1))
    with torch.no_grad():
        se.excite.weight.zero_()  # sigmoid(0) = 1/2 for every channel
    torch.testing.assert_close(se(x), x / 2)
    assert se.squeeze.out_features == 4


def test_urlm_structure_and_shapes():
    model = URLM(URLMConfig(), n_classes=7)
    convs = [blk.conv for blk in model.blocks]
    assert [c.out_channels for c in convs] == [512, 256, 128]
    assert [c.kernel_size[0] for c in convs] == [8, 5, 3]
    assert [isinstance(blk.se, SEBlock) for blk in model.blocks] == [True, True, False]
    assert model.blocks[0].se.squeeze.out_features == 512 // 16
    spec = torch.randn(2, 128, 21)
    assert model.embed(spec).shape == (2, 128) and model(spec).shape == (2, 7)
    assert all(blk(spec if k == 0 else torch.randn(2, blk.conv.in_channels, 21)).shape[-1] == 21
               for k, blk in enumerate(model.blocks))  # 'same' padding, even kernel too


def test_parameter_count_follows_se_ratio():
    counts = {r: count_parameters(URLM(dataclasses.replace(URLMConfig(), se_ratio=r), 7))
              for r in (2, 4, 8, 16, 32)}
    assert counts[2] > counts[4] > counts[8] > counts[16] > counts[32]
    se = lambda r: 2 * 512 * (512 // r) + 2 * 256 * (256 // r)  # W1 and W2, no bias
    assert counts[2] - counts[32] == se(2) - se(32)


# --------------------------------------------------------------------------- fusion


def test_connection_attention_alpha_and_shared_weights():
    torch.manual_seed(0)
    head = ConnectionAttentionHead(SMALL_FUSION, dim=16, n_classes=3).eval()
    scorers = [m for m in head.modules() if isinstance(m, nn.Linear) and m.out_features == 1]
    assert len(scorers) == 1 and scorers[0].in_features == 16  # one W_f, one b
    h1, h2 = torch.randn(5, 16), torch.randn(5, 16)
    logits, alpha = head(h1, h2)
    assert logits.shape == (5, 3) and alpha.shape == (5, 2)
    torch.testing.assert_close(alpha.sum(1), torch.ones(5))
    beta = torch.tanh(torch.stack([head.score(h1), head.score(h2)], 1).squeeze(-1))  # eqs 9-10
    torch.testing.assert_close(alpha, torch.softmax(beta, 1))  # eq 11
    # the same W_f scores both branches: swapping them swaps alpha and leaves h unchanged
    logits_sw, alpha_sw = head(h2, h1)
    torch.testing.assert_close(alpha_sw, alpha.flip(1))
    torch.testing.assert_close(logits_sw, logits)
    # eq 12: identical branch outputs fuse to themselves
    torch.testing.assert_close(head(h1, h1)[0], head.mlp(h1))


def test_concat_head():
    head = ConcatHead(SMALL_FUSION, dim=16, n_classes=3)
    logits, alpha = head(torch.randn(5, 16), torch.randn(5, 16))
    assert logits.shape == (5, 3) and alpha is None
    assert head.mlp[0].in_features == 32
    assert [m.out_features for m in head.mlp if isinstance(m, nn.Linear)] == [8, 4, 3]


def test_align_spectrogram_picks_nearest_frame():
    spec = torch.arange(5.0).view(1, 1, 5).expand(2, 3, 5)  # value = spectrogram frame index
    out = align_spectrogram(spec, 14)
    assert out.shape == (2, 14, 3)
    expected = [min(round(t * 10 / 25), 4) for t in range(14)]
    assert out[0, :, 0].tolist() == expected and out[1, :, 2].tolist() == expected


def test_early_fusion_uses_both_streams():
    torch.manual_seed(0)
    model = EarlyFusion(SMALL_FRLM, n_mels=4, n_classes=3).eval()
    assert model.net.blstm.input_size == 5 + 4
    b = _inputs(T_spec=5)
    out = model(b["frames"], b["mask"], b["spec"])
    assert out.shape == (4, 3)
    assert not torch.allclose(out, model(b["frames"], b["mask"], b["spec"] + 1))
    assert not torch.allclose(out, model(b["frames"] + 1, b["mask"], b["spec"]))


# --------------------------------------------------------------------------- build_model


@pytest.mark.parametrize("name", NETWORKS)
def test_build_model_shapes_and_inputs(name):
    torch.manual_seed(0)
    model = build_model(name, 3, frlm=SMALL_FRLM, urlm=SMALL_URLM, fusion=SMALL_FUSION, n_mels=4)
    b = _inputs()
    expected_inputs = {"frlm": ("frames", "mask"), "urlm": ("spec",)}.get(name, ("frames", "mask", "spec"))
    assert model.inputs == expected_inputs
    logits, alpha = call_model(model, b)
    assert logits.shape == (4, 3) and torch.isfinite(logits).all()
    assert (alpha is not None) == (name in ("amsnet", "late"))
    if name == "amsnet":
        assert isinstance(model, AMSNet) and alpha.shape == (4, 2)
        assert isinstance(model.head, ConnectionAttentionHead)
        h1, h2 = model.embed(b["frames"], b["mask"], b["spec"])
        assert h1.shape == h2.shape == (4, 16)
        assert model.head.inputs == ("h1", "h2")
    if name == "concat":
        assert isinstance(model.head, ConcatHead)
    if name == "late":
        # the branches' own heads' probabilities, averaged with the weight (0.5 until one is chosen)
        assert isinstance(model.head, LateFusionHead) and model.head.frlm_head is model.frlm.head
        model.eval()  # no dropout: the same embeddings in both passes
        with torch.no_grad():
            p = 0.5 * torch.softmax(model.frlm(b["frames"], b["mask"]), 1) + 0.5 * torch.softmax(model.urlm(b["spec"]), 1)
            fused, a = call_model(model, b)
        torch.testing.assert_close(torch.softmax(fused, 1), p)
        torch.testing.assert_close(a, torch.full((4, 2), 0.5))
    logits.sum().backward()
    unused = set()  # the branches' own classifier heads serve stage 1 only (late fusion: they are its head)
    if isinstance(model, AMSNet) and name != "late":
        unused = {id(p) for m in (model.frlm.head, model.urlm.head) for p in m.parameters()}
    for n, p in model.named_parameters():
        assert (p.grad is None) == (id(p) in unused), n


def test_build_model_n_mels_and_errors():
    assert build_model("urlm", 7, n_mels=40).blocks[0].conv.in_channels == 40
    assert build_model("early", 7, n_mels=40).net.blstm.input_size == 76 + 40
    assert build_model("early", 7, spec_hop_ms=20.0).spec_hop_ms == 20.0
    with pytest.raises(ValueError, match="unknown model"):
        build_model("lstm", 7)
    with pytest.raises(ValueError, match="embedding_dim"):
        build_model("amsnet", 7, frlm=dataclasses.replace(FRLMConfig(), embedding_dim=64))


def test_parameter_counts_at_defaults():
    counts = {name: count_parameters(build_model(name, 7)) for name in NETWORKS}
    assert counts["amsnet"] == counts["frlm"] + counts["urlm"] + count_parameters(
        ConnectionAttentionHead(FusionConfig(), 128, 7))
    assert counts["concat"] - counts["amsnet"] == 128 * 64 - 129  # wider first FC, no W_f
    assert counts["late"] == counts["frlm"] + counts["urlm"]  # the branches' heads and a buffer
    peep = PeepholeLSTM(76, 256)
    assert count_parameters(peep) == 2 * (4 * 256 * (76 + 256 + 1) + 3 * 256)


def test_seeded_builds_are_deterministic():
    def run():
        torch.manual_seed(123)
        model = build_model("amsnet", 3, frlm=SMALL_FRLM, urlm=SMALL_URLM, fusion=SMALL_FUSION, n_mels=4)
        logits, _ = call_model(model.train(), _inputs())  # dropout active: uses the seed too
        logits.sum().backward()
        return model, logits
    m1, l1 = run()
    m2, l2 = run()
    torch.testing.assert_close(l1, l2, rtol=0, atol=0)
    for (n, p1), p2 in zip(m1.named_parameters(), m2.parameters()):
        assert torch.equal(p1, p2), n
        assert (p1.grad is None) == (p2.grad is None) and (p1.grad is None or torch.equal(p1.grad, p2.grad)), n
    torch.manual_seed(124)
    m3 = build_model("amsnet", 3, frlm=SMALL_FRLM, urlm=SMALL_URLM, fusion=SMALL_FUSION, n_mels=4)
    assert not torch.equal(m3.frlm.blstm.weight_ih, m1.frlm.blstm.weight_ih)


def test_networks_are_every_model_but_the_classic_baselines_which_build_model_refuses_naming_the_way():
    assert set(NETWORKS) == set(MODELS) - set(CLASSIC_MODELS) and "amsnet" in NETWORKS
    for name in CLASSIC_MODELS:
        with pytest.raises(ValueError, match=f"{name!r} is a classic baseline.*amsnet train --model {name}"):
            build_model(name, 7)
