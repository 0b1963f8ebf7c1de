"""The training losses of each backbone stage, as `(batch, text, step) -> (loss, logs)` closures.

- MDM: x0-prediction MSE on valid frames, text dropped with p = cond_drop (MDM's recipe);
  optionally the integrated root-trajectory term on the predicted x0 (MDMConfig).
- VAE: smooth-L1 reconstruction + velocity term + λ_KL · KL(q(z|x) ‖ N(0, I)) (MLD stage 1);
  optional per-group weights and an integrated root-trajectory term (VAEConfig).
- VAE decoder (MLD `refine`): the same reconstruction terms with the encoder frozen, so the latent
  space a trained denoiser works in does not move.
- MLD denoiser: ε-prediction MSE on the scaled posterior-mean latent, text dropped (stage 2).
- LCM: latent consistency distillation (MotionLCM): teacher takes one guided DDIM step from
  t_{n+k} to t_n; the target is the EMA target network's consistency output at t_n; Huber loss.

All randomness (timesteps, noise, text dropout) comes from torch's global generator, which the
training loop seeds per stage and saves with the training state, so a resumed run continues the
same draws. `seed` is kept in the signatures for callers that build a loss on its own.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F

from ..data.humanml3d import Batch
from ..diffusion.sampling import Conditioning
from ..models.vae import HEIGHT_UNIT_M, HEIGHTS
from .loop import LossFn

Logs = dict[str, float]


def _masked_mean(err: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of err (B, T, F) over valid frames mask (B, T)."""
    m = mask[..., None].to(err.dtype)
    return (err * m).sum() / (m.sum() * err.shape[-1]).clamp(min=1)


def _drop_text(text: torch.Tensor, lengths: torch.Tensor, p: float) -> Conditioning:
    keep = torch.rand(text.shape[0], device=text.device) >= p
    return Conditioning(text=text, lengths=lengths, use_text=keep)


def mdm_loss(model, seed: int = 0) -> LossFn:
    schedule = model.schedule
    T = schedule.num_train_timesteps
    traj_w = model.config.trajectory_weight

    def loss(batch: Batch, text: torch.Tensor, step: int) -> tuple[torch.Tensor, Logs]:
        x0 = batch.features  # (B, T, 263) normalised
        b = x0.shape[0]
        t = torch.randint(0, T, (b,), device=x0.device)
        noise = torch.randn(x0.shape, device=x0.device)
        x_t = schedule.add_noise(x0, t, noise)
        cond = _drop_text(text, batch.lengths, model.config.cond_drop)
        pred = model(x_t, t, cond)
        mse = _masked_mean((pred - x0) ** 2, batch.mask)
        vel = _masked_mean(
            ((pred[:, 1:] - pred[:, :-1]) - (x0[:, 1:] - x0[:, :-1])) ** 2, batch.mask[:, 1:]
        )
        total = mse + vel
        logs = {"mse": mse.item(), "vel": vel.item()}
        # the heading and sideways travel that MDM under-produces (docs/backbones.md)
        if traj_w > 0:
            traj = root_trajectory_loss(pred, x0, batch.mask, model.mean, model.std)
            total = total + traj_w * traj
            logs["traj"] = traj.item()
        return total, {"loss": total.item()} | logs

    return loss


def _reconstruction_loss(model):
    """(rec, x, mask) -> (loss, logs): the VAE's smooth-L1 reconstruction + velocity terms, the
    feature groups weighted by `VAEConfig.{root,velocity,contact}_weight`, plus the integrated
    root-trajectory term when `trajectory_weight` > 0."""
    vae = model.vae
    traj_w = vae.config.trajectory_weight
    height_w = vae.config.height_weight
    weights = vae.config.channel_weights()
    if weights is not None:
        weights = weights.to(next(vae.parameters()).device)

    def weighted(err: torch.Tensor) -> torch.Tensor:
        return err if weights is None else err * weights

    def loss(rec: torch.Tensor, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, Logs]:
        x, mask = x[:, : rec.shape[1]], mask[:, : rec.shape[1]]
        recon = _masked_mean(weighted(F.smooth_l1_loss(rec, x, reduction="none")), mask)
        vel = _masked_mean(
            weighted(
                F.smooth_l1_loss(rec[:, 1:] - rec[:, :-1], x[:, 1:] - x[:, :-1], reduction="none")
            ),
            mask[:, 1:],
        )
        total, logs = recon + vel, {"recon": recon.item()}
        if traj_w > 0:
            traj = root_trajectory_loss(rec, x, mask, model.mean, model.std)
            total = total + traj_w * traj
            logs["traj"] = traj.item()
        if height_w > 0:
            height = height_loss(rec, x, mask, model.mean, model.std)
            total = total + height_w * height
            logs["height"] = height.item()
        return total, logs

    return loss


def _posterior_sample(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    return mu + torch.randn(mu.shape, device=mu.device) * (0.5 * logvar).exp()


def vae_loss(model, seed: int = 0) -> LossFn:
    """The VAE's loss: `_reconstruction_loss` of a posterior sample + λ_KL · KL."""
    vae = model.vae
    reconstruction = _reconstruction_loss(model)

    def loss(batch: Batch, text: torch.Tensor, step: int) -> tuple[torch.Tensor, Logs]:
        mu, logvar = vae.encode(batch.features, batch.lengths)
        rec = vae.decode(_posterior_sample(mu, logvar), batch.lengths)
        total, logs = reconstruction(rec, batch.features, batch.mask)
        kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum((1, 2)).mean()
        total = total + vae.config.kl_weight * kl
        return total, {"loss": total.item()} | logs | {"kl": kl.item()}

    return loss


def latent_noise(model, shape: torch.Size, lengths: torch.Tensor, sigma_max: float):
    """Extra noise for the decoder stage, in raw latent units (B, n, d): per clip a std σ drawn
    uniformly in [0, sigma_max] times the model's `latent_std` (the denoiser's unit), zero on
    latent positions past the motion (`noise_mask`)."""
    device = model.latent_std.device
    sigma = torch.rand(shape[0], 1, 1, device=device) * sigma_max
    mask = model.noise_mask(lengths, shape[1]).to(device)[..., None]
    return torch.randn(shape, device=device) * sigma * model.latent_std * mask


def decoder_loss(model, seed: int = 0) -> LossFn:
    """The VAE's reconstruction loss with the encoder frozen and in eval mode (no KL): refines
    the decoder without moving the latent space that a trained denoiser works in. The stage's
    module must have `MotionVAE.encoder_parameters()` frozen (`requires_grad_(False)`). With
    `VAEConfig.decoder_noise` > 0 the posterior sample also gets `latent_noise`."""
    vae = model.vae
    reconstruction = _reconstruction_loss(model)
    sigma_max = vae.config.decoder_noise

    def loss(batch: Batch, text: torch.Tensor, step: int) -> tuple[torch.Tensor, Logs]:
        if any(p.requires_grad for p in vae.encoder_parameters()):
            raise ValueError("decoder_loss trains the decoder only: freeze the encoder first")
        with torch.no_grad():
            for module in vae.encoder_modules():
                module.eval()  # no dropout: the latents the denoiser was trained on
            mu, logvar = vae.encode(batch.features, batch.lengths)
        z = _posterior_sample(mu, logvar)
        if sigma_max > 0:
            z = z + latent_noise(model, z.shape, batch.lengths, sigma_max)
        rec = vae.decode(z, batch.lengths)
        total, logs = reconstruction(rec, batch.features, batch.mask)
        return total, {"loss": total.item()} | logs

    return loss


def root_trajectory_loss(
    rec: torch.Tensor, x: torch.Tensor, mask: torch.Tensor, mean: torch.Tensor, std: torch.Tensor
) -> torch.Tensor:
    """Smooth-L1 between the integrated root motion of normalised features `rec` and `x`
    (B, T, 263) over valid frames: cumulative yaw (2 x the summed channel 0, rad) and cumulative
    facing-frame x/z displacement (summed channels 1-2, m). A per-frame error in these channels
    adds up over the clip; this term charges it as the oracle sees it (turn angle, travel)."""
    m = mask[..., None].to(rec.dtype)
    scale = torch.tensor([2.0, 1.0, 1.0], dtype=rec.dtype, device=rec.device)

    def integrated(f: torch.Tensor) -> torch.Tensor:
        raw = f[..., :3] * std[:3] + mean[:3]
        return torch.cumsum(raw * m * scale, dim=1)

    err = F.smooth_l1_loss(integrated(rec), integrated(x), reduction="none")
    return _masked_mean(err, mask)


def height_loss(
    rec: torch.Tensor, x: torch.Tensor, mask: torch.Tensor, mean: torch.Tensor, std: torch.Tensor
) -> torch.Tensor:
    """Smooth-L1 between the pelvis and foot heights (`vae.HEIGHTS`) of normalised features `rec`
    and `x` (B, T, 263) over valid frames, in raw metres divided by `HEIGHT_UNIT_M` (quadratic
    below 5 cm of error, linear above). In the normalised reconstruction loss the few airborne
    frames of a jump are a sliver of all entries; here they count in metres, as the oracle sees
    a take-off."""
    idx = torch.tensor(HEIGHTS, device=rec.device)

    def metres(f: torch.Tensor) -> torch.Tensor:
        return f.index_select(-1, idx) * std[idx] + mean[idx]

    err = F.smooth_l1_loss(metres(rec) / HEIGHT_UNIT_M, metres(x) / HEIGHT_UNIT_M, reduction="none")
    return _masked_mean(err, mask)


@torch.no_grad()
def measure_latent_std(model, split, batches: int = 20, batch_size: int = 64, seed: int = 0):
    """Std of the VAE's posterior means over training crops (the latent scale factor): a scalar,
    or (d,) per channel when the model's `latent_scale` is "channel"."""
    from ..data.humanml3d import sample_batch

    rng = np.random.default_rng(seed)
    model.eval()
    mus = []
    for _ in range(batches):
        b = sample_batch(split, batch_size, rng, mean=split.mean, std=split.std)
        b = b.to(model.mean.device)
        mu = model.vae.encode(b.features, b.lengths)[0]  # (B, L, d)
        mus.append(mu[model.noise_mask(b.lengths, mu.shape[1])])  # the tokens of each motion
    tokens = torch.cat(mus)  # (N, d)
    return tokens.std(0) if model.config.latent_scale == "channel" else tokens.std()


def _latent_mean(err: torch.Tensor, model, lengths: torch.Tensor) -> torch.Tensor:
    """Mean of err (B, L, d) over the latent tokens of each motion: every token for a "tokens"
    VAE (a plain mean, as before the "frames" layout existed), those inside the length for a
    "frames" one."""
    if model.config.vae.latent_layout != "frames":
        return err.mean()
    return _masked_mean(err, model.noise_mask(lengths, err.shape[1]))


def latent_eps_loss(model, seed: int = 0) -> LossFn:
    schedule = model.schedule
    T = schedule.num_train_timesteps

    def loss(batch: Batch, text: torch.Tensor, step: int) -> tuple[torch.Tensor, Logs]:
        with torch.no_grad():
            model.vae.eval()
            x0 = model.encode(batch.features, batch.lengths)  # (B, L, d) scaled latents
        b = x0.shape[0]
        t = torch.randint(0, T, (b,), device=x0.device)
        noise = torch.randn(x0.shape, device=x0.device)
        x_t = schedule.add_noise(x0, t, noise)
        cond = _drop_text(text, batch.lengths, model.config.cond_drop)
        mse = _latent_mean((model(x_t, t, cond) - noise) ** 2, model, batch.lengths)
        return mse, {"loss": mse.item()}

    return loss


class ConsistencyDistillation:
    """MotionLCM's latent consistency distillation from a frozen MLD teacher.

    `student` is an LCM model whose VAE and denoiser start as copies of the teacher's (its
    guidance embedding starts at zero); `target` is its EMA (decay `ema_decay`), updated after
    every optimizer step by `update_target`.
    """

    def __init__(self, student, teacher, seed: int = 0) -> None:
        self.student = student
        self.teacher = teacher.eval().requires_grad_(False)
        self.target = copy.deepcopy(student).eval().requires_grad_(False)
        c = student.config
        self.k = c.num_train_timesteps // c.origin_steps
        self.abar = student.schedule.alphas_cumprod().float().to(student.mean.device)

    def _teacher_step(self, x_t, t, t_prev, cond, w):
        """One guided DDIM step of the teacher from t to t_prev (t_prev >= 0)."""
        both = self.teacher(torch.cat([x_t, x_t]), torch.cat([t, t]), cond.repeat2())
        e_c, e_u = both.chunk(2)
        eps = e_u + w.view(-1, 1, 1) * (e_c - e_u)
        a_t = self.abar[t].view(-1, 1, 1)
        a_p = self.abar[t_prev].view(-1, 1, 1)
        x0 = (x_t - (1 - a_t).sqrt() * eps) / a_t.sqrt()
        return a_p.sqrt() * x0 + (1 - a_p).sqrt() * eps

    def loss(self, batch: Batch, text: torch.Tensor, step: int) -> tuple[torch.Tensor, Logs]:
        c = self.student.config
        with torch.no_grad():
            x0 = self.teacher.encode(batch.features, batch.lengths)
        b = x0.shape[0]
        dev = x0.device
        j = torch.randint(0, c.origin_steps, (b,), device=dev)
        t = (j + 1) * self.k - 1  # on the grid 19, 39, ..., 999
        t_prev = (t - self.k).clamp(min=0)
        w = c.w_min + (c.w_max - c.w_min) * torch.rand(b, device=dev)
        noise = torch.randn(x0.shape, device=dev)
        x_t = self.student.schedule.add_noise(x0, t, noise)
        cond = Conditioning(text=text, lengths=batch.lengths, guidance=w)
        pred = self.student(x_t, t, cond)
        with torch.no_grad():
            x_prev = self._teacher_step(x_t, t, t_prev, Conditioning(text, batch.lengths), w)
            target = self.target(x_prev, t_prev, cond)
        huber = ((pred - target) ** 2 + c.huber_c**2).sqrt() - c.huber_c
        total = _latent_mean(huber, self.student, batch.lengths)
        return total, {"loss": total.item()}

    @torch.no_grad()
    def update_target(self, step: int) -> None:
        d = self.student.config.ema_decay
        for p_t, p_s in zip(
            self.target.denoiser.parameters(), self.student.denoiser.parameters(), strict=True
        ):
            p_t.lerp_(p_s.detach(), 1 - d)
