"""Plain-numpy float64 references for the losses, written from ALGORITHMS.md with loops over groups and
responses; they never call nsa_jax."""

import numpy as np

CLAMP = 20.0


def group_adv(r, g, kind, ddof=1, eps=1e-6):
    r = np.asarray(r, np.float64)
    out = np.zeros_like(r)
    for q in range(len(r) // g):
        grp = r[q * g : (q + 1) * g]
        for i in range(g):
            others = np.delete(grp, i)
            if kind == "grpo":
                out[q * g + i] = 0.0 if g <= ddof else (grp[i] - grp.mean()) / (grp.std(ddof=ddof) + eps)
            elif kind == "drgrpo":
                out[q * g + i] = grp[i] - grp.mean()
            elif kind == "rloo":
                out[q * g + i] = 0.0 if g == 1 else grp[i] - others.mean()
            elif kind == "ngrpo":
                virt = np.append(grp, 1.0)
                out[q * g + i] = (grp[i] - virt.mean()) / (virt.std(ddof=ddof) + eps)
    return out


def outcome_adv(r, kind, lam=0.1):
    pos, neg = {"psr": (1, 0), "nsr": (0, -1), "w-reinforce": (lam, -1), "sign": (1, -1)}[kind]
    return np.where(np.asarray(r) > 0.5, pos, neg).astype(np.float64)


def agg_weights(mask, mode, max_len=None):
    """``w[B, T]`` such that the aggregated loss is ``sum(w * l)`` (so also its gradient weights)."""
    mask = np.asarray(mask, np.float64)
    b, t = mask.shape
    if mode == "token-mean":
        return mask / mask.sum() if mask.sum() else np.zeros_like(mask)
    if mode == "seq-mean-token-mean":
        lengths = mask.sum(1)
        nseq = (lengths > 0).sum()
        w = np.zeros_like(mask)
        for i in range(b):
            if lengths[i] > 0:
                w[i] = mask[i] / lengths[i] / nseq
        return w
    if mode == "seq-mean-token-sum-norm":
        return mask / (b * (t if max_len is None else max_len))
    raise KeyError(mode)


def surrogate_loss_and_grad(logp, logp_old, adv, mask, eps_low, eps_high, mode, logp_ref=None, beta_kl=0.0):
    """Clipped surrogate ``-(min(r A, clip(r) A) - beta k3)`` aggregated, and its analytic gradient in logp."""
    logp, logp_old = np.asarray(logp, np.float64), np.asarray(logp_old, np.float64)
    a = np.asarray(adv, np.float64)
    a = a[:, None] * np.ones_like(logp) if a.ndim == 1 else a
    lr = np.clip(logp - logp_old, -CLAMP, CLAMP)
    ratio = np.exp(lr)
    clipped = np.clip(ratio, 1 - eps_low, 1 + eps_high)
    unclipped_term, clipped_term = ratio * a, clipped * a
    per_tok = -np.minimum(unclipped_term, clipped_term)
    # d/dlogp: the unclipped branch carries -A*ratio; the clipped branch is constant in logp.
    grad_tok = np.where(unclipped_term <= clipped_term, -a * ratio, 0.0)
    grad_tok = np.where(np.abs(logp - logp_old) < CLAMP, grad_tok, 0.0)
    if logp_ref is not None:
        d = np.clip(np.asarray(logp_ref, np.float64) - logp, -CLAMP, CLAMP)
        per_tok = per_tok + beta_kl * (np.exp(d) - d - 1)
        grad_tok = grad_tok + beta_kl * (1 - np.exp(d))
    w = agg_weights(mask, mode)
    return (w * per_tok).sum(), w * grad_tok


def lens_rewards(r, logp_old, mask, g, dimp_uses_pbar=True):
    r = np.asarray(r, np.float64)
    mask = np.asarray(mask, np.float64)
    seq = (np.asarray(logp_old, np.float64) * mask).sum(1)
    pbar = np.exp(seq / np.maximum(mask.sum(1), 1))  # a response without tokens has pbar 1
    p_imp = pbar if dimp_uses_pbar else np.exp(seq)
    rt, dd = np.zeros_like(r), np.zeros_like(r)
    for q in range(len(r) // g):
        sl = slice(q * g, (q + 1) * g)
        d = 2 * pbar[sl].max()
        if r[sl].max() > 0:
            d = max(1.0 / np.mean(r[sl] / p_imp[sl]), d)
        dd[sl] = d
        rt[sl] = r[sl] - (1 - r[sl]) * (1.0 / g) * pbar[sl] / (d - pbar[sl])
    return rt, dd


def lens_adv(r, logp_old, mask, g, alpha=0.25, ddof=1, eps=1e-6):
    rt, _ = lens_rewards(r, logp_old, mask, g)
    r = np.asarray(r, np.float64)
    out = np.zeros_like(rt)
    for q in range(len(r) // g):
        sl = slice(q * g, (q + 1) * g)
        x = rt[sl]
        if r[sl].min() > 0:
            out[sl] = 0.0
        elif r[sl].max() > 0:
            out[sl] = (x - x.mean()) / (x.std(ddof=ddof) + eps)
        else:
            out[sl] = alpha * (x - x.mean())
    return out


def nsa_weights(r, step_ids, step_correct, beta):
    w = np.ones(np.shape(step_ids))
    for b in range(w.shape[0]):
        if r[b] > 0.5:
            continue
        for t in range(w.shape[1]):
            s = step_ids[b][t]
            if 0 <= s < len(step_correct[b]) and step_correct[b][s]:
                w[b, t] = beta
    return w


def bcpg_loss_and_grad(logp, logp_b, r, mask, g, weights, tau):
    """ALGORITHMS.md 3.4 in float64: value and d value / d logp of
    mean over rows with tokens of -[sum_t m w A logp - tau/2 (sum_t m (logp - logp_b))^2] / sum_t m."""
    logp, logp_b, mask = (np.asarray(x, np.float64) for x in (logp, logp_b, mask))
    adv = np.concatenate([x - x.mean() for x in np.asarray(r, np.float64).reshape(-1, g)])
    lengths = mask.sum(axis=1)
    rows = lengths > 0
    s = (mask * (logp - logp_b)).sum(axis=1)
    n = rows.sum()
    value, grad = 0.0, np.zeros_like(logp)
    for i in np.flatnonzero(rows):
        v = ((mask[i] * weights[i] * adv[i] * logp[i]).sum() - tau / 2 * s[i] ** 2) / lengths[i]
        value -= v / n
        grad[i] = -mask[i] * (weights[i] * adv[i] - tau * s[i]) / lengths[i] / n
    return value, grad


def topr_loss_and_grad(logp, logp_b, r, mask, max_len, baseline=0.0):
    """ALGORITHMS.md 1 (TOPR) in float64: sum_i -w_i R_i sum_t m logp / (B L_max), w_i = 1 for R_i >= 0 and
    min(exp(sum_t m (logp - logp_b)), 1) otherwise (no gradient through w)."""
    logp, logp_b, mask = (np.asarray(x, np.float64) for x in (logp, logp_b, mask))
    big_r = 2 * np.asarray(r, np.float64) - 1 - baseline
    w = np.where(big_r < 0, np.minimum(np.exp((mask * (logp - logp_b)).sum(axis=1)), 1.0), 1.0)
    scale = -(w * big_r)[:, None] * mask / (logp.shape[0] * max_len)
    return float((scale * logp).sum()), scale


def log_sigmoid(x):
    return -np.logaddexp(0.0, -x)
