/* What the sandbox's pages share: their calls to the sandbox's API (an error's Chinese message
   thrown as the Error's), and who holds the phone (the worker WeChat's sign-in signs in). */
(function () {
  "use strict";

  async function call(method, path, body, headers) {
    const response = await fetch(path, {
      method, credentials: "same-origin",
      headers: { "Content-Type": "application/json", ...(headers || {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error((data.error && data.error.message) || `HTTP ${response.status}`);
    return data;
  }

  function holdPhone(openid) {
    document.cookie = `sandbox_openid=${encodeURIComponent(openid)}; path=/; SameSite=Lax`;
  }

  window.sandbox = Object.freeze({ call, get: (path) => call("GET", path), holdPhone });
})();
