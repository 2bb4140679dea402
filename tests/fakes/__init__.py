"""The outside services the tests talk to: the product's own simulation of WeChat's pushes and
HTTP API and of Tencent Cloud SMS (``wxbackend.sandbox.simulated``, which the sandbox serves too)."""

from wxbackend.sandbox.simulated import FakeCall, FakePusher, FakeSmsRequest, FakeTencentSms, FakeWeChat

__all__ = ["FakeCall", "FakePusher", "FakeSmsRequest", "FakeTencentSms", "FakeWeChat"]
