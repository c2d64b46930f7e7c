// Reading a token's expiry, and when to refresh it: the same rule as the
// Go client's (client.RefreshTime).

/** The latest a token is refreshed before its exp, in ms. */
export const REFRESH_LEAD = 30000;

/**
 * tokenExpiry reads a JWT's exp claim, in ms since the epoch, without
 * checking the token (the client holds no key); null if token is not a
 * JWT with an exp.
 */
export function tokenExpiry(token) {
  const parts = typeof token === "string" ? token.split(".") : [];
  if (parts.length !== 3) return null;
  try {
    const b64 = parts[1].replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4)));
    return typeof claims?.exp === "number" ? claims.exp * 1000 : null;
  } catch {
    return null;
  }
}

/**
 * refreshTime is when a token got at got (ms) and expiring at exp (ms) is
 * refreshed: at 80% of its lifetime or REFRESH_LEAD before exp, whichever
 * is sooner, but not before half its lifetime.
 */
export function refreshTime(got, exp) {
  const life = exp - got;
  return got + Math.max(Math.min(life * 0.8, life - REFRESH_LEAD), life / 2);
}
