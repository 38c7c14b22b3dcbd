"""The parking payment API: /mobility/v1/parking/payment (terminals, operators, the city office).

A thin adapter: every rule (roles, lots, idempotency, money) lives in the service layer.
"""

from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response

from smartcity.auth.principal import Caller
from smartcity.core.errors import BadRequestData, InvalidRequest
from smartcity.domains.mobility.parking.payment import operations, receipts, settlement
from smartcity.domains.mobility.parking.payment.codec import transaction_from_json
from smartcity.domains.mobility.parking.payment.model import (
    CardKind,
    ParkingSession,
    Transaction,
    TransactionKind,
)
from smartcity.domains.mobility.parking.payment.service import PaymentService
from smartcity.domains.mobility.parking.tariff import DiscountClass, Tariff

PREFIX = "/mobility/v1/parking/payment"
MAX_BATCH = 1000
"""Most transactions one upload may carry."""
JSON = "application/json"
T = TypeVar("T")


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=JSON)


async def _body(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        raise InvalidRequest("the request needs a JSON body")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise InvalidRequest(f"the body is not JSON: {error}") from None


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequestData("the body must be a JSON object")
    return body


def _day(text: str | None, name: str) -> date:
    if text is None:
        raise BadRequestData(f"{name} (YYYY-MM-DD, Asia/Seoul) is required")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadRequestData(f"{name} must be a date YYYY-MM-DD, not {text!r}") from None


def _session(stay: ParkingSession) -> dict[str, Any]:
    body = {
        "sessionId": stay.session_id,
        "lotId": stay.lot_id,
        "status": stay.status.value,
        "entry": stay.entry_at,
        "entryTerminal": stay.entry_terminal,
        "card": receipts.mask(stay.card_id),
        "plate": stay.plate,
        "exit": stay.exit_at,
        "exitTerminal": stay.exit_terminal,
        "fee": stay.fee,
        "paid": stay.paid,
        "arrears": stay.arrears,
        "refunded": stay.refunded,
    }
    return {name: value for name, value in body.items() if value is not None}


def payment_router(service: PaymentService, caller: Callable[..., Awaitable[Caller]]) -> APIRouter:
    """Return the payment API over one payment service (`caller`: the web's caller dependency)."""
    CallerDep = Annotated[Caller, Depends(caller)]
    api = APIRouter(prefix=PREFIX, tags=["Parking payment"])

    async def call(function: Callable[..., T], *args: Any) -> T:
        return await run_in_threadpool(function, *args)

    @api.post("/transactions", summary="Upload a batch of terminal transactions (offline)")
    async def upload(request: Request, caller: CallerDep) -> Response:
        body = _object(await _body(request))
        items = body.get("transactions")
        if not isinstance(items, list) or not items or len(items) > MAX_BATCH:
            raise BadRequestData(f"transactions must be a list of 1 to {MAX_BATCH} items")
        parsed: list[tuple[int, Transaction]] = []
        refused: dict[int, dict[str, Any]] = {}
        for index, item in enumerate(items):
            try:
                parsed.append((index, transaction_from_json(item)))
            except BadRequestData as error:
                refused[index] = {"index": index, "outcome": "refused", "detail": error.detail}
        results = await call(service.submit, caller, [tx for _, tx in parsed])
        out = dict(refused)
        for (index, _), result in zip(parsed, results, strict=True):
            out[index] = {"index": index, **result.as_json()}
        return _json({"results": [out[index] for index in range(len(items))]})

    def online(kind: TransactionKind) -> Callable[..., Any]:
        async def post(request: Request, caller: CallerDep) -> Response:
            body = _object(await _body(request))
            tx = transaction_from_json({**body, "kind": kind.value})
            [result] = await call(lambda: service.submit(caller, [tx], online=True))
            return _json(result.as_json())

        return post

    for path, kind, summary in (
        ("/entries", TransactionKind.ENTRY, "A live entry tap or plate read (입차)"),
        ("/exits", TransactionKind.EXIT, "A live exit: charges the fee or refuses (출차)"),
        ("/topups", TransactionKind.TOPUP, "Load stored value on a prepaid card (충전)"),
    ):
        api.add_api_route(path, online(kind), methods=["POST"], summary=summary)

    @api.get("/transactions/{key:path}", summary="The stored result of a transaction key")
    async def transaction(key: str, caller: CallerDep) -> Response:
        return _json((await call(service.result, caller, key)).as_json())

    @api.put("/lots/{lot_id}", summary="Register a lot's operator and tariff for payment")
    async def register_lot(lot_id: str, request: Request, caller: CallerDep) -> Response:
        body = _object(await _body(request))
        operator_id = body.get("operatorId")
        if not isinstance(operator_id, str):
            raise BadRequestData("operatorId is required")
        try:
            tariff = Tariff.model_validate(body.get("tariff", {}))
        except ValueError as error:
            raise BadRequestData(f"the tariff is not valid: {error}") from None
        await call(service.register_lot, caller, lot_id, operator_id, tariff)
        return _json(
            {"lotId": lot_id, "operatorId": operator_id, "tariff": tariff.model_dump(mode="json")}
        )

    @api.post("/cards", summary="Issue a card (prepaid or postpaid)")
    async def issue_card(request: Request, caller: CallerDep) -> Response:
        body = _object(await _body(request))
        try:
            kind = CardKind(str(body.get("kind")))
            classes = [DiscountClass(c) for c in body.get("classes", [])]
        except (ValueError, TypeError) as error:
            raise BadRequestData(f"not a card: {error}") from None
        card_id, plate = body.get("cardId"), body.get("plate")
        if not isinstance(card_id, str) or (plate is not None and not isinstance(plate, str)):
            raise BadRequestData("cardId (and plate, if given) must be strings")
        card = await call(service.issue_card, caller, card_id, kind, plate, classes)
        return _json({"cardId": card.card_id, "kind": card.kind.value, "balance": 0}, 201)

    @api.get("/cards/{card_id}", summary="A card and its stored value")
    async def card(card_id: str, caller: CallerDep) -> Response:
        found = await call(service.card, caller, card_id)
        return _json(
            {
                "cardId": found.card_id,
                "kind": found.kind.value,
                "balance": found.balance,
                "plate": found.plate,
                "classes": [c.value for c in found.classes],
            }
        )

    @api.get("/cards/{card_id}/statement", summary="A postpaid card's statement (후불 청구)")
    async def statement(card_id: str, request: Request, caller: CallerDep) -> Response:
        first = _day(request.query_params.get("first"), "first")
        last = _day(request.query_params.get("last"), "last")
        return _json(await call(receipts.postpaid_statement, service, caller, card_id, first, last))

    @api.post("/cards/{card_id}/payments", summary="Record a postpaid bill's payment")
    async def postpaid_payment(card_id: str, request: Request, caller: CallerDep) -> Response:
        body = _object(await _body(request))
        amount, request_id = body.get("amount"), body.get("requestId")
        if type(amount) is not int or not isinstance(request_id, str):
            raise BadRequestData("amount (whole won) and requestId are required")
        args = (service, caller, card_id, amount, request_id)
        return _json(await call(receipts.record_postpaid_payment, *args))

    @api.post("/grants", summary="Grant a terminal lots or an operator's staff operators")
    async def grant(request: Request, caller: CallerDep) -> Response:
        body = _object(await _body(request))
        name, scope, ids = body.get("principal"), body.get("scope"), body.get("ids")
        if not isinstance(name, str) or not isinstance(scope, str) or not isinstance(ids, list):
            raise BadRequestData("principal, scope ('lot' or 'operator') and ids are required")
        await call(service.grants.grant, caller, name, scope, [str(i) for i in ids])
        return Response(status_code=204)

    @api.get("/sessions/{session_id}", summary="One parking session")
    async def session(session_id: str, caller: CallerDep) -> Response:
        return _json(_session(await call(operations.session, service, caller, session_id)))

    @api.get("/sessions/{session_id}/receipt", summary="A session's receipt (영수증)")
    async def receipt(session_id: str, request: Request, caller: CallerDep) -> Response:
        body = await call(receipts.receipt, service, caller, session_id)
        if request.query_params.get("format") == "text":
            text = receipts.render_receipt(body)
            return Response(text, media_type="text/plain; charset=utf-8")
        return _json(body)

    @api.post("/sessions/{session_id}/refunds", summary="Refund all or part of a fee (환불)")
    async def refund(session_id: str, request: Request, caller: CallerDep) -> Response:
        body = _object(await _body(request))
        amount, request_id = body.get("amount"), body.get("requestId")
        if not isinstance(request_id, str) or not request_id:
            raise BadRequestData("requestId is required (a retry with it refunds nothing more)")
        if amount is not None and type(amount) is not int:
            raise BadRequestData("amount must be whole won")
        done = await call(operations.refund, service, caller, session_id, amount, request_id)
        return _json(
            {
                "sessionId": done.session_id,
                "amount": done.amount,
                "toArrears": done.to_arrears,
                "toCard": done.to_card,
                "journalId": done.journal_id,
                "duplicate": done.duplicate,
            },
            200 if done.duplicate else 201,
        )

    @api.post("/sessions/{session_id}/close", summary="Close an incomplete session and charge it")
    async def close(session_id: str, request: Request, caller: CallerDep) -> Response:
        body = _object(await _body(request)) if await request.body() else {}
        at = body.get("at")
        moment = None
        if at is not None:
            try:
                moment = datetime.fromisoformat(str(at).replace("Z", "+00:00"))
            except ValueError:
                raise BadRequestData(f"at must be an ISO 8601 time, not {at!r}") from None
        closed = await call(operations.close_flagged, service, caller, session_id, moment)
        return _json(_session(closed))

    @api.post("/sessions/{session_id}/void", summary="Close an incomplete session, no charge")
    async def void(session_id: str, caller: CallerDep) -> Response:
        return _json(_session(await call(operations.void_session, service, caller, session_id)))

    @api.post("/settlements", summary="Settle a business day (일일 정산); safe to run again")
    async def settle(request: Request, caller: CallerDep) -> Response:
        body = _object(await _body(request))
        day = _day(body.get("businessDay"), "businessDay")
        operator_id = body.get("operatorId")
        if operator_id is None:
            done = await call(settlement.settle_day, service, caller, day)
        elif isinstance(operator_id, str):
            done = [await call(settlement.settle, service, caller, operator_id, day)]
        else:
            raise BadRequestData("operatorId must be a string")
        return _json({"settlements": [item.as_json() for item in done]})

    @api.post("/reconciliation", summary="Flag sessions without exit; list exits without entry")
    async def reconcile(request: Request, caller: CallerDep) -> Response:
        body = _object(await _body(request))
        hours = body.get("olderThanHours", 24)
        if type(hours) is not int or hours <= 0:
            raise BadRequestData("olderThanHours must be a positive whole number")
        report = await call(operations.reconcile, service, caller, timedelta(hours=hours))
        return _json(
            {
                "flaggedNow": report.flagged_now,
                "flagged": [_session(stay) for stay in report.flagged],
                "orphanExits": report.orphan_exits,
            }
        )

    @api.get("/revenue", summary="Gross, discounts, refunds and net per operator and day")
    async def revenue(request: Request, caller: CallerDep) -> Response:
        first = _day(request.query_params.get("first"), "first")
        last = _day(request.query_params.get("last"), "last")
        rows = await call(settlement.revenue, service, caller, first, last)
        return _json({"days": [row.as_json() for row in rows]})

    @api.get("/lots/{lot_id}/occupancy", summary="Entries, exits and cars inside per hour")
    async def occupancy(lot_id: str, request: Request, caller: CallerDep) -> Response:
        day = _day(request.query_params.get("day"), "day")
        hours = await call(settlement.occupancy_trend, service, caller, lot_id, day)
        return _json({"lotId": lot_id, "day": day.isoformat(), "hours": hours})

    @api.get("/ledger/check", summary="The ledger's sum (always 0) and consistency checks")
    async def ledger_check(caller: CallerDep) -> Response:
        return _json(await call(service.ledger_check, caller))

    return api
