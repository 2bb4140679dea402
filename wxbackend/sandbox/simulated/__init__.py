"""WeChat's pushes and HTTP API, and Tencent Cloud SMS, simulated over real HTTP."""

from .tencent_sms import FakeSmsRequest, FakeTencentSms
from .wechat_api import FakeCall, FakeWeChat
from .wechat_push import FakePusher

__all__ = ["FakeCall", "FakePusher", "FakeSmsRequest", "FakeTencentSms", "FakeWeChat"]
