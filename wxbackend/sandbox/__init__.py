"""The training sandbox (操作培训): WeChat and Tencent Cloud SMS simulated inside the product, so
a union's IT team and its cadres can walk every journey before a real Official Account is
connected. The same simulation serves the test suite: one implementation, speaking the real wire
formats."""
