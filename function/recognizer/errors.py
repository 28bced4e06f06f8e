"""The one error type a client can cause, carried to the HTTP layer as JSON."""

from __future__ import annotations


class ApiError(Exception):
    """A request problem: answered as {"error": {"code", "message"}} with `status`."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}  # what HTTP asks of such an answer, e.g. a 405's Allow

    def to_json(self) -> dict:
        return {"error": {"code": self.code, "message": self.message}}
