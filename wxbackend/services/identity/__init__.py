"""Platform accounts and how people reach them: WeChat sign-in, sessions, SMS codes, the
shared platform API's apps and SSO."""
