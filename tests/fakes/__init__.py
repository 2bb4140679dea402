"""Fakes of WeChat's two faces: the pushes it sends us and the HTTP API we call."""

from .wechat_api import FakeCall, FakeWeChat
from .wechat_push import FakePusher

__all__ = ["FakeCall", "FakePusher", "FakeWeChat"]
