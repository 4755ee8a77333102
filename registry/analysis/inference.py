"""Inference that holds with 33 boroughs and few of them delivering.

Borough-clustered standard errors with Student's t are too narrow when only a handful of
boroughs carry the variation in delivery (with 4 of 32 delivering, a nominal 5% test rejects in
about 19% of null panels). The remedies here resample borough by borough under the null:

- :func:`wild_ols` is the restricted wild cluster bootstrap (WCR) of the two-way fixed-effects
  slope: residuals of the model without delivery are flipped borough by borough, and the
  bootstrap t statistics give the p-value; the interval is the set of values the same test does
  not reject (test inversion). Checked against the ``wildboottest`` package in the tests.
- :func:`score_poisson` is the wild score bootstrap (Kline and Santos, 2012) of the Poisson
  model with borough and period effects: the model is fitted with the slope held at the value
  tested, each borough's score is flipped, and the studentised score gives the p-value; again the
  interval is found by inverting the test. Only restricted fits are needed, which
  :func:`poisson_fe` does in milliseconds by iterative proportional fitting.

Weights are Rademacher (+1 or -1, every sign pattern when there are fewer than ``draws`` of
them) or, below 12 boroughs, Webb's six-point weights. The draws are fixed by a seed, so a
result is reproducible.

With fewer than 10 delivering boroughs neither bootstrap's size is assured: in simulated null
panels with 4 or 8 of 33 boroughs delivering, the WCR bootstrap rejected 6.5-7.7% at a nominal
5% (400 panels each) and the score bootstrap 9% in one 200-panel run (homicide-sized counts,
most borough-months zero, so each borough's score is skewed). There each also runs a
randomisation test (MacKinnon and Webb, 2020): the boroughs' whole delivery paths are given to
other boroughs at random, and the model's score is computed for each reassignment. When
delivery went to boroughs that could as well have been others, that test is exact whatever the
counts look like. The p-value is the larger of the two, and the interval holds every slope that
at least one of the two does not reject (the inversion of that more cautious test).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from threadpoolctl import threadpool_limits

from registry.errors import RegistryError

DRAWS = 999
SEED = 20190901
WEBB_BELOW = 12
FEW_DELIVERING = 10
REASSIGNMENTS = 999
POWER = 0.8
TOLERANCE = 1e-10
MAX_ITERATIONS = 5000


@dataclass(frozen=True)
class Bootstrap:
    """A bootstrap p-value and interval for one slope, and how they were obtained."""

    p_value: float
    ci_low: float
    ci_high: float
    weights: str
    draws: int
    clusters: int
    method: str
    reassignments: int = 0
    delivering: int = 0

    def describe(self) -> str:
        """The method in words, naming the randomisation test when it was combined in."""
        text = (
            f"{self.method} bootstrap by borough, {self.weights} weights, "
            f"{self.draws:,} draws, {self.clusters} boroughs"
        )
        if self.reassignments:
            text += (
                f"; as only {self.delivering} boroughs delivered, the p-value and interval are "
                "the more cautious of that bootstrap and a randomisation test that gives the "
                "boroughs' delivery paths to other boroughs at random "
                f"({self.reassignments:,} reassignments)"
            )
        return text


def cluster_weights(
    n_clusters: int, draws: int = DRAWS, seed: int = SEED, kind: str | None = None
) -> tuple[np.ndarray, str]:
    """``draws × n_clusters`` bootstrap weights. Webb's six-point weights below 12 clusters
    (Rademacher signs then take too few distinct values), else Rademacher signs: every sign
    pattern when there are no more than ``draws`` of them (as ``wildboottest`` does), else
    random ones. ``kind`` ("rademacher" or "webb") overrides the choice."""
    kind = kind or ("webb" if n_clusters < WEBB_BELOW else "rademacher")
    rng = np.random.default_rng(seed)
    if kind == "webb":
        points = np.sqrt(np.array([0.5, 1.0, 1.5]))
        w = rng.choice(np.concatenate([-points, points]), size=(draws, n_clusters))
        return w, "Webb six-point"
    if 2**n_clusters <= draws:
        patterns = np.array(list(itertools.product([1.0, -1.0], repeat=n_clusters)))
        return patterns, "Rademacher (every sign pattern)"
    w = rng.choice(np.array([-1.0, 1.0]), size=(draws, n_clusters))
    return w, "Rademacher"


def _p_value(t: np.ndarray) -> float:
    """Two-sided bootstrap p-value: the share of draws (rows after the first) at least as
    extreme as the sample's own statistic (the first row, all weights one)."""
    return float(np.mean(np.abs(t[1:]) >= np.abs(t[0]) * (1 - 1e-10)))


def reassignments(n_clusters: int, draws: int = REASSIGNMENTS, seed: int = SEED) -> np.ndarray:
    """``draws × n_clusters`` random permutations (fixed by ``seed``): in row ``i`` borough
    ``g`` receives the delivery path of borough ``order[i, g]``."""
    rng = np.random.default_rng(seed)
    return np.argsort(rng.random((draws, n_clusters)), axis=1)


def reassigned_scores(
    x: np.ndarray, weight: np.ndarray, residual: np.ndarray, order: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each borough's score ``S_g = Σ_t x̃_gt r_gt``, and the information ``Σ V x̃²``, with the
    delivery paths (rows of the borough × period matrix ``x``) reassigned as each row of
    ``order`` says (``draws × boroughs``), ``x̃`` being the reassigned delivery less its
    projection on borough and period effects weighted by ``weight`` (``V``). Returns the scores
    (``draws × boroughs``) and the information (``draws``).

    ``residual`` (``r``, zero outside the panel) sums to zero within each borough, as the
    residual of any model with borough effects does, so only the period part ``c`` of the
    projection ``a_g + c_t`` matters: ``S_g = Σ_t x_gt r_gt - Σ_t c_t r_gt``. Eliminating the
    borough effects from the normal equations leaves ``M c = b`` with ``M = diag(Σ_g V) -
    V' diag(1/Σ_t V) V`` the same for every reassignment, so one pseudo-inverse serves them all
    (``M`` is singular only in the constant, which neither figure depends on). The information
    is ``Σ V x̃ x = Σ V x² - Σ_g a_g m_g - Σ_t c_t n_t`` with ``m`` and ``n`` the borough and
    period sums of ``V x``. Only boroughs with some delivery have a path to move, so the work
    is done where each lands: a few milliseconds for 999 reassignments of 33 × 96.
    """
    v = weight
    rows, cols = v.sum(1), v.sum(0)
    per_row = 1 / np.where(rows > 0, rows, 1.0)
    m_inv = np.linalg.pinv(np.diag(cols) - (v * per_row[:, None]).T @ v)
    sources = np.flatnonzero((x != 0).any(axis=1))
    landing = np.argsort(order, axis=1)[:, sources]  # draws × delivering
    paths = x[sources]
    v_landing = v[landing]  # draws × delivering × periods
    weighted = v_landing * paths[None, :, :]
    m = weighted.sum(2)
    n = weighted.sum(1)
    c = (n - np.einsum("dk,dkt->dt", m * per_row[landing], v_landing)) @ m_inv.T
    a = (m - np.einsum("dkt,dt->dk", v_landing, c)) * per_row[landing]
    information = (
        np.einsum("dkt,kt->d", weighted, paths) - np.sum(a * m, axis=1) - np.sum(c * n, axis=1)
    )
    scores = -(c @ residual.T)
    # A row of ``landing`` names distinct boroughs, so plain indexed addition is safe.
    scores[np.arange(len(order))[:, None], landing] += np.einsum(
        "dkt,kt->dk", residual[landing], paths
    )
    return scores, information


def reassignment_p(
    x: np.ndarray, weight: np.ndarray, residual: np.ndarray, order: np.ndarray
) -> float:
    """The randomisation test's two-sided p-value: the share of reassignments, the boroughs'
    own among them, whose score statistic ``Σ S_g / √(Σ V x̃²)`` is at least as far from zero
    as the boroughs' own (``(1 + count) / (1 + draws)``, exact for randomly drawn
    reassignments).

    The score is scaled by the model's information, not studentised by the scores themselves:
    ``Σ S_g / √Σ S_g²`` cannot exceed the square root of the number of delivering boroughs, so
    with four of them it could not tell a slope of -0.5 from one of -50 and the interval would
    never close.
    """
    # Small matrix products: BLAS threads only contend with each other (and with a busy server).
    with threadpool_limits(limits=1, user_api="blas"):
        scores, information = reassigned_scores(x, weight, residual, _with_own(order))
    return _randomisation_p(scores.sum(1), information)


def _with_own(order: np.ndarray) -> np.ndarray:
    """``order`` with the boroughs' own assignment (nobody moves) as its first row."""
    return np.vstack([np.arange(order.shape[1])[None, :], order])


def _randomisation_p(totals: np.ndarray, information: np.ndarray) -> float:
    """``(1 + count) / (1 + draws)``: the first entry is the boroughs' own statistic."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.nan_to_num(totals / np.sqrt(information))
    return float((1 + np.sum(np.abs(t[1:]) >= np.abs(t[0]) * (1 - 1e-10))) / len(t))


def delivering_rows(x: np.ndarray) -> int:
    """How many boroughs (rows of a borough × period matrix) have any delivery."""
    return int(np.count_nonzero((x != 0).any(axis=1)))


def invert(
    p_at: Callable[[float], float],
    estimate: float,
    scale: float,
    *,
    alpha: float = 0.05,
    steps: int = 40,
) -> tuple[float, float]:
    """The interval of slopes whose test is not rejected at ``alpha``, by bisection either side
    of ``estimate`` (``scale``, a standard error, sets the first bracket). Infinite where the
    test never rejects within 1,000 standard errors."""
    if not (math.isfinite(scale) and scale > 0):
        return float("nan"), float("nan")
    bounds = []
    for sign in (-1.0, 1.0):
        inside, outside = estimate, estimate + sign * 2 * scale
        reach = 2.0
        while p_at(outside) >= alpha:
            inside = outside
            reach *= 2
            if reach > 1000:
                outside = sign * math.inf
                break
            outside = estimate + sign * reach * scale
        if math.isinf(outside):
            bounds.append(outside)
            continue
        for _ in range(steps):
            mid = (inside + outside) / 2
            if p_at(mid) >= alpha:
                inside = mid
            else:
                outside = mid
            if abs(outside - inside) < 1e-4 * scale:
                break
        bounds.append((inside + outside) / 2)
    return bounds[0], bounds[1]


def wild_ols(
    y: np.ndarray,
    x: np.ndarray,
    clusters: np.ndarray,
    *,
    periods: np.ndarray | None = None,
    delivery: np.ndarray | None = None,
    draws: int = DRAWS,
    seed: int = SEED,
    alpha: float = 0.05,
    kind: str | None = None,
) -> Bootstrap:
    """WCR bootstrap of the slope of ``y`` on ``x`` (both already within-transformed, so the
    borough and period effects are out), clustered by ``clusters``.

    Everything reduces to per-borough sums, so each tested value costs ``draws × boroughs``
    operations: ``S_g = x_g'x_g`` and ``c_g = x_g'u_g`` with ``u = y - b0·x`` the restricted
    residual; a draw's slope is ``b0 + Σ w_g c_g / Σ S_g`` and its borough score
    ``w_g c_g - (b* - b0) S_g`` gives its CRV standard error (the small-sample factor is common
    to every draw and cancels).

    Given each row's ``periods`` and ``delivery`` (before the effects were taken out), and with
    fewer than ``FEW_DELIVERING`` boroughs delivering, a value is rejected only if the
    randomisation test that reassigns delivery paths among boroughs rejects it too: that test
    sets ``y - b0·x`` (what the rates would be without delivery, if its effect were ``b0``)
    against every reassigned path, which is exact when delivery went to boroughs at random.
    """
    codes, uniques = pd.factorize(clusters)
    g = len(uniques)
    if g < 2:
        raise RegistryError("A bootstrap clustered by borough needs at least 2 boroughs.")
    xx_g = np.bincount(codes, x * x, g)
    xy_g = np.bincount(codes, x * y, g)
    xx = float(xx_g.sum())
    if xx <= 0:
        raise RegistryError("Delivery does not vary once borough and period effects are out.")
    draws_w, weights = cluster_weights(g, draws, seed, kind)
    w = np.vstack([np.ones(g), draws_w])
    # The randomisation test's scores are linear in the residual y - b0·x and its information
    # does not involve it, so both are found once: (Σ S for y, Σ S for x, information).
    permute: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    delivering = 0
    if periods is not None and delivery is not None:
        p_codes, p_uniques = pd.factorize(periods)
        shape = (g, len(p_uniques))
        paths, mask = np.zeros(shape), np.zeros(shape)
        paths[codes, p_codes], mask[codes, p_codes] = delivery, 1.0
        delivering = delivering_rows(paths)
        if delivering < FEW_DELIVERING:
            y_grid, x_grid = np.zeros(shape), np.zeros(shape)
            y_grid[codes, p_codes], x_grid[codes, p_codes] = y, x
            order = _with_own(reassignments(g, seed=seed))
            with threadpool_limits(limits=1, user_api="blas"):
                on_y, information = reassigned_scores(paths, mask, y_grid, order)
                on_x = reassigned_scores(paths, mask, x_grid, order)[0]
            permute = (on_y.sum(1), on_x.sum(1), information)

    def p_at(b0: float) -> float:
        c_g = xy_g - b0 * xx_g
        shift = (w @ c_g) / xx  # b* - b0 per draw
        scores = w * c_g[None, :] - shift[:, None] * xx_g[None, :]
        se = np.sqrt(np.sum(scores**2, axis=1)) / xx
        with np.errstate(divide="ignore", invalid="ignore"):
            t = shift / se
        p = _p_value(np.nan_to_num(t))
        if permute is not None:
            on_y, on_x, information = permute
            p = max(p, _randomisation_p(on_y - b0 * on_x, information))
        return p

    estimate = float(xy_g.sum() / xx)
    residual = y - estimate * x
    score = np.bincount(codes, x * residual, g)
    se = math.sqrt(float(np.sum(score**2))) / xx
    low, high = invert(p_at, estimate, se, alpha=alpha)
    return Bootstrap(
        p_at(0.0),
        low,
        high,
        weights,
        len(w) - 1,
        g,
        "Wild cluster (restricted, WCR)",
        reassignments=0 if permute is None else len(permute[2]) - 1,
        delivering=0 if permute is None else delivering,
    )


@dataclass(frozen=True)
class PoissonGrid:
    """A panel as borough × period matrices for :func:`poisson_fe`: counts, log offsets, one
    matrix per regressor and the mask of cells used."""

    y: np.ndarray
    offset: np.ndarray
    x: list[np.ndarray]
    mask: np.ndarray
    areas: list[str]
    periods: list[object]

    @classmethod
    def of(cls, frame: pd.DataFrame, xs: list[str]) -> PoissonGrid:
        data = frame.dropna(subset=[*xs, "count", "population"])
        data = data[data["population"] > 0]
        for column in ("area", "period"):
            totals = data.groupby(column)["count"].transform("sum")
            data = data[totals > 0]
        if data["area"].nunique() < 2 or data["period"].nunique() < 2:
            raise RegistryError("Too few boroughs or periods with any counts to fit a count model.")
        a, areas = pd.factorize(data["area"], sort=True)
        p, periods = pd.factorize(data["period"], sort=True)
        shape = (len(areas), len(periods))

        def grid(values: np.ndarray) -> np.ndarray:
            out = np.zeros(shape)
            out[a, p] = values
            return out

        mask = np.zeros(shape, dtype=bool)
        mask[a, p] = True
        return cls(
            y=grid(data["count"].to_numpy(float)),
            offset=grid(np.log(data["population"].to_numpy(float))),
            x=[grid(data[c].to_numpy(float)) for c in xs],
            mask=mask,
            areas=[str(v) for v in areas],
            periods=list(periods),
        )


def fitted_means(grid: PoissonGrid, eta: np.ndarray) -> np.ndarray:
    """The fitted means with borough and period effects at their maximum-likelihood values for
    the linear predictor ``eta`` (offset plus slopes), by iterative proportional fitting: the
    Poisson likelihood equations say each borough's and each period's fitted total equals its
    observed total."""
    m = grid.mask
    base = np.where(m, np.exp(eta - eta[m].max()), 0.0)
    row_total, col_total = (grid.y * m).sum(1), (grid.y * m).sum(0)
    col = np.ones(base.shape[1])
    for _ in range(MAX_ITERATIONS):
        row = row_total / (base @ col)
        new = col_total / (row @ base)
        if np.max(np.abs(new - col) / new) < TOLERANCE:
            col = new
            break
        col = new
    row = row_total / (base @ col)
    return base * row[:, None] * col[None, :]


def _partial(grid: PoissonGrid, x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``x`` less its weighted least-squares projection on borough and period effects
    (alternating weighted means), the part of ``x`` the effects cannot absorb."""
    m = grid.mask
    w = np.where(m, weight, 0.0)
    rw, cw = w.sum(1), w.sum(0)
    r = np.where(m, x, 0.0)
    for _ in range(MAX_ITERATIONS):
        r = r - ((w * r).sum(1) / rw)[:, None]
        shift = (w * r).sum(0) / cw
        r = r - shift[None, :]
        if np.max(np.abs(shift)) < 1e-12 * (1 + np.abs(x[m]).max()):
            break
    return np.where(m, r, 0.0)


def _newton(
    grid: PoissonGrid, beta: np.ndarray, free: list[int]
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Newton's method on the profile likelihood over the slopes in ``free`` (the others stay
    as given): at the effects' optimum the score of the slopes is ``Σ x (y - μ)`` and their
    information ``x̃' W x̃`` (``x̃`` partialled on the effects with weights ``μ``). Returns the
    slopes, the fitted means and every regressor partialled on the effects."""
    beta = np.array(beta, dtype=float)
    for _ in range(100):
        mu = fitted_means(grid, grid.offset + sum(b * x for b, x in zip(beta, grid.x, strict=True)))
        tilde = [_partial(grid, x, mu) for x in grid.x]
        if not free:
            return beta, mu, tilde
        score = np.array([float(np.sum(tilde[i] * (grid.y - mu))) for i in free])
        info = np.array([[float(np.sum(tilde[i] * mu * tilde[j])) for j in free] for i in free])
        step = np.linalg.solve(info, score)
        beta[free] += step
        if np.max(np.abs(step)) < 1e-10:
            mu = fitted_means(
                grid, grid.offset + sum(b * x for b, x in zip(beta, grid.x, strict=True))
            )
            return beta, mu, [_partial(grid, x, mu) for x in grid.x]
    raise RegistryError("The Poisson model did not converge.")


def poisson_fe(grid: PoissonGrid) -> tuple[np.ndarray, np.ndarray]:
    """Poisson slopes with borough and period effects and their borough-clustered covariance
    (the cluster sandwich with the ``G/(G-1)`` factor)."""
    k = len(grid.x)
    beta, mu, tilde = _newton(grid, np.zeros(k), list(range(k)))
    info = np.array([[float(np.sum(ti * mu * tj)) for tj in tilde] for ti in tilde])
    scores = np.column_stack([(t * (grid.y - mu)).sum(1) for t in tilde])  # borough × k
    g = scores.shape[0]
    bread = np.linalg.inv(info)
    cov = bread @ (scores.T @ scores) @ bread * g / (g - 1)
    return beta, cov


def _borough_scores(grid: PoissonGrid, tested: int, b0: float) -> tuple[np.ndarray, np.ndarray]:
    """Each borough's score for slope ``tested`` with it held at ``b0`` and the other slopes
    and effects refitted, orthogonal to the other slopes (so they are nuisance, as in a
    restricted fit); and that fit's means."""
    beta = np.zeros(len(grid.x))
    beta[tested] = b0
    free = [i for i in range(len(grid.x)) if i != tested]
    beta, mu, tilde = _newton(grid, beta, free)
    t = tilde[tested]
    for j in free:
        t = t - tilde[j] * float(np.sum(tilde[j] * mu * t) / np.sum(tilde[j] * mu * tilde[j]))
    return (t * (grid.y - mu)).sum(1), mu


def score_poisson(
    grid: PoissonGrid,
    *,
    estimate: float | None = None,
    std_error: float | None = None,
    tested: int = 0,
    draws: int = DRAWS,
    seed: int = SEED,
    alpha: float = 0.05,
) -> Bootstrap:
    """Wild score bootstrap (Kline-Santos) of slope ``tested`` of ``grid``.

    For a tested value ``b0`` the model is fitted with that slope fixed, each borough's score
    ``S_g = Σ_t x̃ (y - μ)`` is formed, and the studentised score ``Σ S_g / √Σ S_g²`` is set
    against the same statistic with each ``S_g`` multiplied by a bootstrap weight. The interval
    (test inversion) is found only when ``estimate`` and ``std_error`` are given, and only for a
    single regressor; otherwise it is NaN.

    With a single regressor and fewer than ``FEW_DELIVERING`` boroughs delivering, a value is
    rejected only if the randomisation test rejects it too: the score of the same restricted
    fit, with the delivery paths reassigned among boroughs (exact at ``b0 = 0`` when delivery
    went to boroughs at random, since that fit then does not involve delivery).
    """
    g = grid.y.shape[0]
    draws_w, weights = cluster_weights(g, draws, seed)
    w = np.vstack([np.ones(g), draws_w])
    delivering = delivering_rows(grid.x[tested] * grid.mask)
    order = None
    if len(grid.x) == 1 and delivering < FEW_DELIVERING:
        order = reassignments(g, seed=seed)

    def p_at(b0: float) -> float:
        scores, mu = _borough_scores(grid, tested, b0)
        ws = w * scores[None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            t = ws.sum(1) / np.sqrt(np.sum(ws**2, axis=1))
        p = _p_value(np.nan_to_num(t))
        if order is not None:
            residual = np.where(grid.mask, grid.y - mu, 0.0)
            p = max(p, reassignment_p(grid.x[tested] * grid.mask, mu, residual, order))
        return p

    low = high = float("nan")
    if estimate is not None and std_error is not None and len(grid.x) == 1:
        low, high = invert(p_at, estimate, std_error, alpha=alpha)
    return Bootstrap(
        p_at(0.0),
        low,
        high,
        weights,
        len(w) - 1,
        g,
        "Wild score (Kline-Santos)",
        reassignments=0 if order is None else len(order),
        delivering=0 if order is None else delivering,
    )


def minimum_detectable(std_error: float, df: int, *, alpha: float = 0.05) -> float:
    """The smallest slope a two-sided test at ``alpha`` detects with 80% power, on the slope's
    own scale: ``(t_{1-α/2} + t_{power}) × SE`` with ``df`` degrees of freedom."""
    if not (math.isfinite(std_error) and std_error > 0):
        return float("nan")
    q = float(stats.t.ppf(1 - alpha / 2, df) + stats.t.ppf(POWER, df))
    return q * std_error


def delivering_boroughs(frame: pd.DataFrame, x: str) -> int:
    """How many boroughs have any delivery in the rows a model uses."""
    data = frame.dropna(subset=[x])
    return int(data.loc[data[x] > 0, "area"].nunique())


def few_clusters_warning(delivering: int, boroughs: int, *, resampled: bool = True) -> str | None:
    """A plain warning when few boroughs carry the delivery the estimate rests on.

    ``resampled`` is False for a model whose interval is the clustered one with Student's t
    (the negative binomial): the warning then says that interval is too narrow here.
    """
    if delivering >= FEW_DELIVERING and boroughs >= WEBB_BELOW:
        return None
    if not resampled:
        return (
            f"Few boroughs: only {delivering} of {boroughs} boroughs had any delivery, so the "
            "estimate rests on them alone, and this model's clustered interval and p-value are "
            "too narrow with so few: read them as optimistic (the headline Poisson model's "
            "bootstrap stays honest here)."
        )
    method = (
        "a wild bootstrap by borough and a randomisation test over which boroughs delivered "
        "(the more cautious of the two), which stay"
        if delivering < FEW_DELIVERING
        else "a wild bootstrap by borough, which stays"
    )
    return (
        f"Few boroughs: only {delivering} of {boroughs} boroughs had any delivery, so the "
        f"estimate rests on them alone; the interval and p-value come from {method} honest "
        "here where ordinary clustered errors are too narrow, but the answer is still uncertain."
    )


def holm(p_values: np.ndarray | pd.Series, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Holm's step-down correction: which hypotheses are rejected at ``alpha``, and the adjusted
    p-values, in the order given.

    The same figures as statsmodels' ``multipletests(method="holm")`` (the tests compare them),
    without its call to ``gc.collect()``: a full garbage collection in a server holding dozens of
    sessions took longer than the rest of a borough comparison.
    """
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p, kind="stable")
    steps = np.arange(len(p), 0, -1)
    adjusted_sorted = np.minimum(np.maximum.accumulate(p[order] * steps), 1.0)
    adjusted = np.empty_like(p)
    adjusted[order] = adjusted_sorted
    rejected_sorted = np.minimum.accumulate(p[order] <= alpha / steps)
    rejected = np.empty(len(p), dtype=bool)
    rejected[order] = rejected_sorted
    return rejected, adjusted
