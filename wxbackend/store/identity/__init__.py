"""SQL for accounts, their WeChat followers, and the platform API's apps."""
