"""Read the temporal query parameters (timerel, lastN, aggregation, format) into TemporalOptions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final, Literal

from smartcity.broker.contexts import ActiveContext
from smartcity.broker.params import split_list
from smartcity.core.durations import parse_duration
from smartcity.core.errors import BadRequestData, InvalidRequest
from smartcity.storage.history_query import TIME_COLUMNS, InstanceWindow
from smartcity.storage.history_rows import micros

TemporalForm = Literal["normalized", "temporalValues", "aggregatedValues"]
AGGREGATION_METHODS: Final = (
    "totalCount",
    "distinctCount",
    "sum",
    "avg",
    "min",
    "max",
    "stddev",
    "sumsq",
)
TIMERELS: Final = ("before", "after", "between")
TEMPORAL_OPTIONS: Final = frozenset({"temporalValues", "aggregatedValues", "sysAttrs"})
QUERY_PARAMETERS: Final = frozenset(
    {
        "id",
        "type",
        "idPattern",
        "attrs",
        "pick",
        "q",
        "scopeQ",
        "georel",
        "geometry",
        "coordinates",
        "geoproperty",
        "timeproperty",
        "timerel",
        "timeAt",
        "endTimeAt",
        "lastN",
        "lang",
        "aggrMethods",
        "aggrPeriodDuration",
        "datasetId",
        "limit",
        "offset",
        "count",
        "options",
        "format",
        "local",
    }
)
RETRIEVE_PARAMETERS: Final = QUERY_PARAMETERS - {
    "id",
    "type",
    "idPattern",
    "q",
    "scopeQ",
    "georel",
    "geometry",
    "coordinates",
    "geoproperty",
    "limit",
    "offset",
    "count",
}


@dataclass(frozen=True, slots=True)
class TemporalOptions:
    """What part of the history to show and how."""

    form: TemporalForm = "normalized"
    sys_attrs: bool = False
    timeproperty: str = "observedAt"
    timerel: str | None = None
    time_at: int | None = None
    end_time_at: int | None = None
    last_n: int | None = None
    methods: tuple[str, ...] = ()
    period: int = 0
    """Aggregation period in microseconds; 0 is the whole time range."""
    attrs: frozenset[str] | None = None
    dataset_ids: tuple[str, ...] | None = None
    lang: str | None = None

    def window(self, limit: int) -> InstanceWindow:
        """Return the instance window these options select, with `limit` instances at most."""
        lower = upper = None
        if self.timerel == "before":
            upper = self.time_at
        elif self.timerel == "after":
            lower = self.time_at
        elif self.timerel == "between":
            lower, upper = self.time_at, self.end_time_at
        return InstanceWindow(
            attrs=sorted(self.attrs) if self.attrs is not None else None,
            dataset_ids=self.dataset_ids,
            column=TIME_COLUMNS[self.timeproperty],
            lower=lower,
            upper=upper,
            last_n=self.last_n,
            limit=limit,
        )


def check_parameters(params: Mapping[str, Any], allowed: frozenset[str]) -> None:
    """Refuse parameters the endpoint does not know (a likely typo)."""
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise InvalidRequest(
            f"unknown query parameter(s) {unknown}; temporal requests take {sorted(allowed)}"
        )


def _time(params: Mapping[str, Any], name: str) -> int | None:
    raw = params.get(name)
    if raw is None:
        return None
    try:
        return micros(str(raw))
    except ValueError:
        raise BadRequestData(
            f"{name} must be an ISO 8601 date-time such as 2026-11-27T10:00:00Z, not {raw!r}"
        ) from None


def _form(params: Mapping[str, Any]) -> tuple[TemporalForm, bool]:
    options = set(split_list(params.get("options")) or [])
    unknown = options - TEMPORAL_OPTIONS
    if unknown:
        raise BadRequestData(
            f"options {sorted(unknown)} do not apply here; temporal requests take "
            f"{sorted(TEMPORAL_OPTIONS)}"
        )
    forms = [option for option in ("temporalValues", "aggregatedValues") if option in options]
    format_ = params.get("format")
    if format_ is not None:
        if format_ not in ("normalized", "temporalValues", "aggregatedValues"):
            raise BadRequestData(
                f"format must be normalized, temporalValues or aggregatedValues, not {format_!r}"
            )
        forms = [format_]  # format wins over options (clause 6.3.12)
    if len(forms) > 1:
        raise BadRequestData("choose temporalValues or aggregatedValues, not both")
    form: TemporalForm = forms[0] if forms else "normalized"
    return form, "sysAttrs" in options


def temporal_options(params: Mapping[str, Any], ctx: ActiveContext) -> TemporalOptions:
    """Check the temporal parameters of a request and return the options they ask for."""
    form, sys_attrs = _form(params)
    timeproperty = str(params.get("timeproperty") or "observedAt")
    if timeproperty not in TIME_COLUMNS:
        raise BadRequestData(
            f"timeproperty must be one of {sorted(TIME_COLUMNS)}, not {timeproperty!r}"
        )
    timerel = params.get("timerel")
    time_at, end_time_at = _time(params, "timeAt"), _time(params, "endTimeAt")
    if timerel is not None:
        if timerel not in TIMERELS:
            raise BadRequestData(f"timerel must be before, after or between, not {timerel!r}")
        if time_at is None:
            raise BadRequestData(f"timerel={timerel} needs timeAt (an ISO 8601 date-time)")
        if timerel == "between":
            if end_time_at is None:
                raise BadRequestData("timerel=between needs endTimeAt as well as timeAt")
            if end_time_at <= time_at:
                raise BadRequestData("endTimeAt must be later than timeAt")
        elif end_time_at is not None:
            raise BadRequestData(f"endTimeAt only goes with timerel=between, not {timerel}")
    elif time_at is not None or end_time_at is not None:
        raise BadRequestData("timeAt and endTimeAt need timerel (before, after or between)")
    last_n = _last_n(params.get("lastN"))
    methods, period = _aggregation(params, form)
    attrs = split_list(params.get("pick")) or split_list(params.get("attrs"))
    datasets = split_list(params.get("datasetId"))
    return TemporalOptions(
        form=form,
        sys_attrs=sys_attrs,
        timeproperty=timeproperty,
        timerel=timerel,
        time_at=time_at,
        end_time_at=end_time_at,
        last_n=last_n,
        methods=methods,
        period=period,
        attrs=frozenset(ctx.expand(name) for name in attrs) if attrs else None,
        dataset_ids=(
            tuple("" if d == "@none" else d for d in datasets) if datasets is not None else None
        ),
        lang=params.get("lang"),
    )


def _last_n(raw: Any) -> int | None:
    if raw is None:
        return None
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise BadRequestData(f"lastN must be a whole number of at least 1, not {raw!r}") from None
    if value < 1:
        raise BadRequestData(f"lastN must be at least 1, not {value}")
    return value


def _aggregation(params: Mapping[str, Any], form: TemporalForm) -> tuple[tuple[str, ...], int]:
    raw_methods = params.get("aggrMethods")
    raw_period = params.get("aggrPeriodDuration")
    if form != "aggregatedValues":
        if raw_methods is not None or raw_period is not None:
            raise BadRequestData("aggrMethods and aggrPeriodDuration need format=aggregatedValues")
        return (), 0
    methods = split_list(raw_methods)
    if not methods:
        raise BadRequestData(
            "format=aggregatedValues needs aggrMethods, a comma-separated list of "
            + ", ".join(AGGREGATION_METHODS)
        )
    unknown = [method for method in methods if method not in AGGREGATION_METHODS]
    if unknown:
        raise BadRequestData(
            f"unknown aggregation method(s) {unknown}; use {', '.join(AGGREGATION_METHODS)}"
        )
    try:
        period = parse_duration(str(raw_period or "0"))
    except ValueError as error:
        raise BadRequestData(f"aggrPeriodDuration: {error}") from None
    return tuple(dict.fromkeys(methods)), period // timedelta(microseconds=1)
