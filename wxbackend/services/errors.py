"""The one domain-error hierarchy. Handlers render any of these as
``{"error": {"code": ..., "message": ...}}`` with ``status``; the message is for the person
on the other end (a worker or a cadre), in Chinese."""

from __future__ import annotations


class DomainError(Exception):
    code = "error"
    status = 400
    message = "请求有误"

    def __init__(self, message: str | None = None, *, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message or self.message)
        if message:
            self.message = message
        if code:
            self.code = code
        self.headers = headers or {}


class InvalidInput(DomainError):
    code = "invalid_input"
    status = 400
    message = "提交的内容不符合要求"


class NotFound(DomainError):
    code = "not_found"
    status = 404
    message = "未找到相应的内容"


class Unauthenticated(DomainError):
    code = "unauthenticated"
    status = 401
    message = "请先登录"


class Forbidden(DomainError):
    code = "forbidden"
    status = 403
    message = "没有权限进行此操作"


class Conflict(DomainError):
    code = "conflict"
    status = 409
    message = "操作与当前状态冲突"


class TooManyRequests(DomainError):
    code = "too_many_requests"
    status = 429
    message = "操作过于频繁，请稍后再试"


class Unavailable(DomainError):
    code = "unavailable"
    status = 503
    message = "服务暂时不可用，请稍后再试"


class TooLarge(DomainError):
    code = "too_large"
    status = 413
    message = "提交的内容过大"


class UnsupportedType(DomainError):
    code = "unsupported_type"
    status = 415
    message = "不支持的文件类型"
