"""What a lot operator sees: occupancy trends with the forecast ahead, revenue, settlement.

One read for the operator page (`/mobility/parking/operator`). Every part is scoped here, in
the service layer, by the caller's operators (`PaymentAccess.operators`): a parking operator's
staff see the lots, revenue, settlements and incomplete sessions of the operators granted to
them and nothing else; the city office (`operator`) and admins see the whole tenant; anyone
without `read-parking-revenue` gets 403. Occupancy comes from the broker's temporal history (the
lot's counter readings averaged per 15 minutes in SQL), the forecast from the module's
`ForecastSource` (the trained model when fresh, else persistence, and it says which).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from smartcity.auth.policy import Permission
from smartcity.auth.principal import Caller
from smartcity.core.clock import isoformat
from smartcity.core.errors import BadRequestData
from smartcity.domains.mobility.parking.payment import receipts
from smartcity.domains.mobility.parking.payment.model import ParkingSession
from smartcity.domains.mobility.parking.payment.operations import incomplete_sessions
from smartcity.domains.mobility.parking.payment.service import PaymentService
from smartcity.domains.mobility.parking.payment.settlement import revenue, settlements
from smartcity.domains.mobility.parking.service import ParkingService
from smartcity.domains.mobility.parking.tariff import KST
from smartcity.domains.mobility.parking.texts import Lang, site_name

TREND_STEP: Final = timedelta(minutes=15)
TREND_SPAN: Final = timedelta(hours=24)
AHEAD: Final = (15, 30, 60, 90, 120, 180)
"""Minutes ahead the forecast is drawn at."""
MAX_DAYS: Final = 92
INCOMPLETE_AFTER: Final = timedelta(hours=24)


@dataclass
class OperatorView:
    """The operator page's data, checked and scoped for the caller."""

    parking: ParkingService
    payment: PaymentService

    def overview(self, caller: Caller, days: int = 14, lang: Lang = "ko") -> dict[str, Any]:
        """Return the caller's lots (trend and forecast), revenue, settlements, open sessions."""
        if not 1 <= days <= MAX_DAYS:
            raise BadRequestData(f"days must be 1 to {MAX_DAYS}")
        allowed = self.payment.grants.operators(caller, Permission.READ_PARKING_REVENUE)
        now = self.parking.host.clock.now()
        last = now.astimezone(KST).date()
        first = last - timedelta(days=days - 1)
        lots = [
            self._lot(caller.tenant, lot_id, operator_id, now, lang)
            for lot_id, operator_id in self.lots(caller.tenant, allowed)
        ]
        open_sessions = incomplete_sessions(self.payment, caller, INCOMPLETE_AFTER)
        return {
            "now": isoformat(now),
            "operators": None if allowed is None else sorted(allowed),
            "first": first.isoformat(),
            "last": last.isoformat(),
            "forecast": self.parking.forecast.status(caller.tenant, now).as_json(),
            "lots": lots,
            "revenue": [day.as_json() for day in revenue(self.payment, caller, first, last)],
            "settlements": [
                item.as_json() for item in settlements(self.payment, caller, first, last)
            ],
            "incomplete": [_session(stay, operator) for stay, operator in open_sessions],
            "incompleteAfterHours": INCOMPLETE_AFTER / timedelta(hours=1),
        }

    def lots(self, tenant: str, allowed: frozenset[str] | None) -> list[tuple[str, str]]:
        """Return (lot, operator) of the lots registered for payment, within `allowed`."""
        p = self.payment.p
        with self.payment.store.reading() as cursor:
            cursor.execute(
                "SELECT lot_id, operator_id FROM parking_pay_lots "
                f"WHERE tenant = {p} ORDER BY operator_id, lot_id",
                [tenant],
            )
            rows = [(str(lot), str(operator)) for lot, operator in cursor.fetchall()]
        return [row for row in rows if allowed is None or row[1] in allowed]

    def _lot(
        self, tenant: str, lot_id: str, operator_id: str, now: datetime, lang: Lang
    ) -> dict[str, Any]:
        from smartcity.domains.mobility.parking.forecast_series import OccupancyHistory

        found = self.parking.directory.snapshot(tenant).site(lot_id)
        name = site_name(found[0], lang) if found is not None else lot_id
        body: dict[str, Any] = {
            "id": lot_id,
            "operatorId": operator_id,
            "name": name,
            "capacity": None,
            "trend": [],
            "forecast": [],
        }
        reader = OccupancyHistory(self.parking.host.history, self.parking.host.store, TREND_STEP)
        info = reader.lot_info(tenant, lot_id)
        if info is None:
            return body
        body["capacity"] = info.capacity
        series = reader.series(tenant, lot_id, now - TREND_SPAN, now + TREND_STEP, info)
        if series is not None:
            body["trend"] = [
                {"at": isoformat(at), "occupied": round(float(value), 1)}
                for at, value in zip(series.times(), series.occupied, strict=True)
                if not math.isnan(value) and at <= now
            ]
        for minutes in AHEAD:
            at = now + timedelta(minutes=minutes)
            point = self.parking.forecast.free_spaces_at(tenant, lot_id, now, at)
            if point is None:
                continue
            body["forecast"].append(
                {
                    "at": isoformat(at),
                    "occupied": round(info.capacity - point.value, 1),
                    "low": round(info.capacity - point.high, 1),
                    "high": round(info.capacity - point.low, 1),
                    "model": point.model,
                }
            )
        return body


def _session(stay: ParkingSession, operator_id: str) -> dict[str, Any]:
    return {
        "sessionId": stay.session_id,
        "lotId": stay.lot_id,
        "operatorId": operator_id,
        "status": stay.status.value,
        "entry": stay.entry_at,
        "card": receipts.mask(stay.card_id),
        "plate": stay.plate,
    }
