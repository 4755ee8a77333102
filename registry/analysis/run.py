"""``vru analyse`` and the analysis page's entry point: load the panel, fit the model asked for."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry import boroughs
from registry.analysis.estimators import fit_event_study, fit_its, lead_placebo
from registry.analysis.fixed_effects import permute_areas
from registry.analysis.headline import fe_with_checks, headline_poisson, specification_table
from registry.analysis.panel import (
    FREQUENCIES,
    Panel,
    ids_by_name,
    lag_column,
    load_panel,
    stored_measures,
)
from registry.analysis.result import Check, ModelResult, caveats_for, decide_verdict
from registry.analysis.series import LONDON, monthly_series
from registry.auth import Principal, require
from registry.demo import SYNTHETIC_NOTE, is_synthetic
from registry.errors import RegistryError
from registry.outcomes.measures import SeriesBreak, get_measure, series_breaks
from registry.outcomes.sources import months_of_record, of_record
from registry.periods import as_date, check_period, format_month, month_start, quarter_start
from registry.schema import Borough, Delivery, OutcomeCount, OutcomeMeasure, Programme

HEADLINE = "poisson"
VRU_START = dt.date(2019, 9, 1)
PERMUTATIONS = 199
PERMUTATION_SEED = 20190901
LAG_BEFORE_START = (
    "Lag before the window: delivery from up to {months} months before {start} is used for the "
    "lag, so the first outcomes in the window are set against delivery from before it."
)


@dataclass(frozen=True)
class AnalysisOptions:
    """What the analysis page offers: measures (code, label), programmes, months with counts."""

    measures: list[tuple[str, str]]
    programmes: list[str]
    first_month: dt.date | None
    last_month: dt.date | None


def analysis_options(session: Session, *, principal: Principal) -> AnalysisOptions:
    require(principal, "models.run")
    measures = stored_measures(session)
    first, last = months_of_record(session)
    return AnalysisOptions(
        measures=measures,
        programmes=list(session.scalars(select(Programme.name).order_by(Programme.name))),
        first_month=first,
        last_month=last,
    )


def model_series_breaks(
    session: Session,
    *,
    principal: Principal,
    outcome: str,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> list[SeriesBreak]:
    """The series breaks a model of ``outcome`` from ``start`` to ``end`` crosses: the period is
    the months with stored counts, cut to ``start`` and ``end`` when given."""
    require(principal, "models.run")
    measure = get_measure(session, outcome)
    first, last = months_of_record(session, measure.id)
    if first is None or last is None:
        return []
    return series_breaks(
        session, outcome, max(first, start) if start else first, min(last, end) if end else last
    )


def first_deliveries(
    session: Session, *, principal: Principal, programme: str
) -> dict[str, dt.date]:
    """Each borough's first month with opportunities delivered by ``programme``."""
    require(principal, "models.run")
    ids = ids_by_name(session, Programme, [programme])
    rows = session.execute(
        select(Borough.gss_code, func.min(Delivery.month))
        .join(Borough, Borough.id == Delivery.borough_id)
        .where(
            Delivery.programme_id.in_(ids),
            Delivery.deleted_at.is_(None),
            Delivery.opportunities > 0,
        )
        .group_by(Borough.gss_code)
    ).all()
    return {code: as_date(month) for code, month in rows}


def _with_robustness(
    result: ModelResult,
    frame: pd.DataFrame,
    *,
    x: str,
    lag: int,
    months_per_period: int,
    permutations: int,
) -> ModelResult:
    """Add the lead placebo and permutation inference to a fixed-effects ``result``.

    A check that cannot be fitted (a lead indistinguishable from the lag, say) never hides the
    main estimate: the reason goes into the diagnostics instead.
    """
    extra = dict(result.extra)
    diagnostics = dict(result.diagnostics)
    try:
        placebo = lead_placebo(
            frame, lag=lag, lead=1, months_per_period=months_per_period, caveats=[]
        )
    except RegistryError as exc:
        diagnostics["lead_placebo"] = f"lead placebo not estimable: {exc}"
    else:
        extra["lead_placebo"] = {
            "term": placebo.term,
            "estimate": placebo.estimate,
            "std_error": placebo.std_error,
            "ci_low": placebo.ci_low,
            "ci_high": placebo.ci_high,
            "p_value": placebo.p_value,
        }
    try:
        p_perm, draws = permute_areas(
            frame, x=x, n_permutations=permutations, seed=PERMUTATION_SEED
        )
    except RegistryError as exc:
        diagnostics["permutation"] = f"permutation inference not estimable: {exc}"
    else:
        extra["permutation_p_value"] = p_perm
        extra["permutations"] = len(draws)
        extra["permutation_seed"] = PERMUTATION_SEED
    return dataclasses.replace(result, extra=extra, diagnostics=diagnostics)


def _its(
    session: Session,
    *,
    principal: Principal,
    outcome: str,
    start: dt.date | None,
    end: dt.date | None,
    at: dt.date,
    borough: str | None = None,
) -> ModelResult:
    """ITS on the outcome series alone: every stored month of London's (or one borough's)
    counts, whatever delivery is known, with the measure's series breaks."""
    series = monthly_series(
        session, principal=principal, measure=outcome, borough=borough, start=start, end=end
    )
    flt = [of_record(session, OutcomeCount, get_measure(session, outcome).id)]
    if start is not None:
        flt.append(OutcomeCount.month >= start)
    if end is not None:
        flt.append(OutcomeCount.month <= end)
    months = series["month"]
    crossed = series_breaks(session, outcome, months.min(), months.max()) if len(months) else []
    n_areas = 1
    if borough is None:
        n_areas = int(
            session.scalar(select(func.count(func.distinct(OutcomeCount.borough_id))).where(*flt))
            or 0
        )
    return fit_its(
        series,
        at=month_start(at),
        outcome=outcome,
        area=boroughs.lookup(borough).name if borough else LONDON,
        n_areas=n_areas,
        breaks=[(b.month, b.note) for b in crossed],
        caveats=[SYNTHETIC_NOTE] if is_synthetic(session) else [],
    )


@dataclass(frozen=True)
class ModelRequest:
    """What ``vru analyse`` or the Models page asked for: :func:`run_model`'s arguments."""

    outcome: str
    lag: int
    start: dt.date | None
    end: dt.date | None
    programme: str | None
    funding_stream: str | None
    at: dt.date
    borough: str | None
    frequency: str
    permutations: int


@dataclass(frozen=True)
class PanelFit:
    """What a panel model is fitted to: the borough panel, its lagged delivery column, the
    caveats that apply and the outcome's label inside a sentence."""

    panel: Panel
    x: str
    caveats: list[str]
    label: str


@dataclass(frozen=True)
class ModelType:
    """One kind of model: how the Models page and ``vru analyse`` name and describe it, and how
    it is fitted.

    Adding a model is one entry in ``MODEL_TYPES`` and its fit function. A model that reads the
    borough panel (delivery and outcome by borough and period) gives ``fit_panel``; one that
    reads the outcome series alone gives ``fit_series``. The page lists the entries in order,
    with their names and sentences; the CLI's ``--model`` choices are their codes.
    """

    code: str
    name: str
    sentence: str
    fit_panel: Callable[[Session, Principal, ModelRequest, PanelFit], ModelResult] | None = None
    fit_series: Callable[[Session, Principal, ModelRequest], ModelResult] | None = None
    # The refusal when the model is asked for without a programme; None when it needs none.
    needs_programme: str | None = None
    # The panel holds every programme's delivery whatever --programme says (the event study
    # uses the programme only for each borough's first delivery).
    all_programmes: bool = False
    # Its estimate is a lag of delivery: say so when the lag reaches before the window.
    lagged: bool = True


def _fe(
    session: Session, principal: Principal, request: ModelRequest, fit: PanelFit
) -> ModelResult:
    step = FREQUENCIES[request.frequency]
    return _with_robustness(
        fe_with_checks(
            fit.panel.frame,
            x=fit.x,
            lag=request.lag,
            months_per_period=step,
            frequency=request.frequency,
            outcome=request.outcome,
            outcome_label=fit.label,
            caveats=fit.caveats,
        ),
        fit.panel.frame,
        x=fit.x,
        lag=request.lag,
        months_per_period=step,
        permutations=request.permutations,
    )


def _counts(family: str) -> Callable[[Session, Principal, ModelRequest, PanelFit], ModelResult]:
    """The headline count model with borough and period effects, Poisson or negative binomial."""

    def fit_counts(
        session: Session, principal: Principal, request: ModelRequest, fit: PanelFit
    ) -> ModelResult:
        return headline_poisson(
            fit.panel.frame,
            x=fit.x,
            lag=request.lag,
            months_per_period=FREQUENCIES[request.frequency],
            frequency=request.frequency,
            outcome=request.outcome,
            outcome_label=fit.label,
            caveats=fit.caveats,
            family=family,
        )

    return fit_counts


def _event(
    session: Session, principal: Principal, request: ModelRequest, fit: PanelFit
) -> ModelResult:
    assert request.programme is not None  # run_model refuses an event study without one
    firsts = first_deliveries(session, principal=principal, programme=request.programme)
    if request.frequency == "quarter":
        firsts = {a: quarter_start(m) for a, m in firsts.items()}
    return with_verdict(
        fit_event_study(
            fit.panel.frame,
            first_delivery=firsts,
            programme=request.programme,
            months_per_period=FREQUENCIES[request.frequency],
            outcome=request.outcome,
            caveats=fit.caveats,
        ),
        fit.label,
    )


def _its_series(session: Session, principal: Principal, request: ModelRequest) -> ModelResult:
    return _its(
        session,
        principal=principal,
        outcome=request.outcome,
        start=request.start,
        end=request.end,
        at=request.at,
        borough=request.borough,
    )


# The headline first: the Poisson model with borough and period effects (see headline.py).
MODEL_TYPES: dict[str, ModelType] = {
    kind.code: kind
    for kind in (
        ModelType(
            "poisson",
            "Headline: Poisson model with borough and month effects",
            "is the headline. It models the counts, allowing for each borough's population and "
            "usual level and for what all boroughs share each month, and gives the % change in "
            "the rate per extra 10 opportunities per 1,000 young people. Its intervals come "
            "from a bootstrap by borough, which stays honest when few boroughs deliver.",
            fit_panel=_counts("poisson"),
        ),
        ModelType(
            "fe",
            "Additive fixed effects (rate per 100,000; assumes parallel trends in levels)",
            "compares each borough's rate per 100,000 with itself over time, after removing "
            "what all boroughs share each month. It assumes that, without delivery, every "
            "borough's rate would have moved by the same amount, which fails when crime falls "
            "most where it is highest.",
            fit_panel=_fe,
        ),
        ModelType(
            "negbin",
            "Negative binomial count model",
            "is the count model allowing counts to vary more than chance alone would, which "
            "real crime counts usually do.",
            fit_panel=_counts("negbin"),
        ),
        ModelType(
            "its",
            "Interrupted time series",
            "follows London's (or one borough's) monthly count, with its season, the COVID "
            "months and any series break, and asks whether its level or slope changed at a "
            "chosen month.",
            fit_series=_its_series,
        ),
        ModelType(
            "event",
            "Event study around first delivery",
            "lines boroughs up on the month a programme first reached them and compares each "
            "with what the boroughs not yet or never reached predict, before and after.",
            fit_panel=_event,
            needs_programme="An event study needs a programme (--programme NAME).",
            all_programmes=True,
            lagged=False,
        ),
    )
}
MODELS = tuple(MODEL_TYPES)


def run_model(
    session: Session,
    *,
    principal: Principal,
    outcome: str,
    model: str = HEADLINE,
    lag: int = 1,
    start: dt.date | None = None,
    end: dt.date | None = None,
    programme: str | None = None,
    funding_stream: str | None = None,
    at: dt.date = VRU_START,
    borough: str | None = None,
    frequency: str = "month",
    permutations: int = PERMUTATIONS,
) -> ModelResult:
    """Fit ``model`` (a code in ``MODEL_TYPES``) relating ``programme``'s (or
    ``funding_stream``'s) delivery to ``outcome``.

    Delivery is every programme's by default. The default model is the headline Poisson model.

    Every result carries a verdict in words and the checks behind it (the lead placebo, enough
    delivering boroughs). ``fe`` also reports permutation inference (delivery series shuffled
    between boroughs, fixed seed). ``event`` needs a programme. ``its`` reads the outcome series
    alone (every stored month, monthly whatever ``frequency`` says), not the delivery panel.
    """
    require(principal, "models.run")
    kind = MODEL_TYPES.get(model)
    if kind is None:
        raise RegistryError(f"Unknown model {model!r}; choose one of {', '.join(MODELS)}.")
    if lag < 0:
        raise RegistryError(f"A lag must be 0 or more periods, not {lag}.")
    if kind.needs_programme and not programme:
        raise RegistryError(kind.needs_programme)
    if start is not None and end is not None:
        check_period(start, end)
    request = ModelRequest(
        outcome, lag, start, end, programme, funding_stream, at, borough, frequency, permutations
    )
    if kind.fit_series is not None:
        return kind.fit_series(session, principal, request)
    assert kind.fit_panel is not None  # every entry gives one of the two
    own = not kind.all_programmes
    panel = load_panel(
        session,
        principal=principal,
        measure=outcome,
        programmes=[programme] if programme and own else [],
        funding_streams=[funding_stream] if funding_stream and own else [],
        start=start,
        end=end,
        lags=(lag,),
        frequency=frequency,
    )
    frame = panel.frame
    caveats = caveats_for(
        counts=frame["count"].tolist(),
        n_periods=panel.n_periods,
        population_note=panel.population_note,
        short_below=36 if frequency == "month" else 12,
    )
    caveats = [*caveats, *panel.notes]
    if start is not None and lag > 0 and kind.lagged:
        step = FREQUENCIES[frequency]
        caveats.append(LAG_BEFORE_START.format(months=lag * step, start=format_month(start)))
    if is_synthetic(session):
        caveats = [SYNTHETIC_NOTE, *caveats]
    fit = PanelFit(panel, lag_column(lag), caveats, _label(session, outcome))
    return _say_band(kind.fit_panel(session, principal, request, fit), panel)


def _say_band(result: ModelResult, panel: Panel) -> ModelResult:
    """The result with the rate's population band in words (``rate_unit`` in the JSON)."""
    fitted_unit = result.fitted_unit
    if "rate" in fitted_unit and "per 100,000" not in fitted_unit:
        fitted_unit = fitted_unit.replace("rate", f"rate {panel.rate_unit}", 1)
    return dataclasses.replace(
        result, extra={**result.extra, "rate_unit": panel.rate_unit}, fitted_unit=fitted_unit
    )


def _label(session: Session, outcome: str) -> str:
    """The measure's label to sit inside a sentence: "knife crime with injury, ..." (a leading
    capital is lowered unless it starts an abbreviation)."""
    label = session.scalar(select(OutcomeMeasure.label).where(OutcomeMeasure.code == outcome))
    if not label:
        return outcome
    return label if label[:2].isupper() else label[0].lower() + label[1:]


def with_verdict(result: ModelResult, outcome_label: str) -> ModelResult:
    """A verdict for a result whose model did not set one: its pre-trend test (when it has one)
    as a check, then its interval's answer."""
    if result.verdict:
        return result
    checks = list(result.checks)
    pre = result.extra.get("pre_trend_p_value")
    if isinstance(pre, float) and pre == pre and not any(c.name == "pre-trend" for c in checks):
        checks.append(
            Check(
                "pre-trend",
                pre >= 0.05,
                f"the pre-trend test failed: before delivery began, the reached boroughs' "
                f"{outcome_label} already moved differently (p = {pre:.3f})"
                if pre < 0.05
                else f"Pre-trend test passed (p = {pre:.3f}).",
            )
        )
    verdict, text = decide_verdict(
        p_value=result.p_value,
        checks=checks,
        found=f"Association: {outcome_label} changed by more than chance explains.",
        none_found=f"No detectable association with {outcome_label}.",
    )
    return dataclasses.replace(result, verdict=verdict, verdict_text=text, checks=checks)


def run_specs(
    session: Session,
    *,
    principal: Principal,
    outcomes: list[str] | None = None,
    lags: tuple[int, ...] = (0, 1, 2, 3),
    start: dt.date | None = None,
    end: dt.date | None = None,
    programme: str | None = None,
    frequency: str = "month",
    first: str | None = None,
) -> pd.DataFrame:
    """The specification table: the headline model for every outcome (all stored, by default)
    at every lag, with Holm-adjusted p-values across the whole table; ``first``'s rows first."""
    require(principal, "models.run")
    measures = stored_measures(session)
    labels = dict(measures)
    if first is not None and first not in labels:
        raise RegistryError(f"No stored counts for {first}.")
    wanted = outcomes or [code for code, _ in measures]
    if first is not None:
        wanted = [first, *(o for o in wanted if o != first)]
    unknown = [o for o in wanted if o not in labels]
    if unknown:
        raise RegistryError(f"No stored counts for {', '.join(unknown)}.")
    panels = {}
    for code in wanted:
        panel = load_panel(
            session,
            principal=principal,
            measure=code,
            programmes=[programme] if programme else [],
            funding_streams=[],
            start=start,
            end=end,
            lags=lags,
            frequency=frequency,
        )
        panels[code] = (labels[code], panel.frame)
    return specification_table(
        panels, lags=lags, months_per_period=FREQUENCIES[frequency], frequency=frequency
    )
