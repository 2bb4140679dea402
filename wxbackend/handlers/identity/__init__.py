"""HTTP for accounts, WeChat sign-in and the shared platform API."""
