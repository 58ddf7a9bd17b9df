import type { Request } from 'express';

/**
 * Why a request does not come from a page of this origin, or null when nothing says it does not.
 * `Sec-Fetch-Site` decides when the browser sends it (all current ones do); otherwise `Origin` must be
 * this origin — scheme, host and port, since `http://host` and `https://host` are different origins and a
 * page served over plain HTTP (or another port) must not post to the TLS one. `Origin: null` (what a
 * browser sends under `Referrer-Policy: no-referrer`) proves nothing and is refused unless
 * `Sec-Fetch-Site` vouches for the request. A request with neither header is not from a browser.
 * Behind a TLS-terminating proxy set `TRUST_PROXY`: `req.protocol` and `req.host` then follow
 * `X-Forwarded-Proto` and `X-Forwarded-Host`.
 */
export function crossOriginRefusal(req: Request): string | null {
  const fetchSite = req.headers['sec-fetch-site'];
  const origin = req.headers.origin;
  if (fetchSite !== undefined) {
    if (fetchSite !== 'same-origin' && fetchSite !== 'none') return 'cross-site request refused';
  } else if (origin !== undefined) {
    const claimed = normalOrigin(origin);
    if (claimed === null || claimed !== normalOrigin(`${req.protocol}://${req.host}`)) return 'cross-origin request refused';
  }
  return null;
}

/** `scheme://host[:port]` as URL serialises it (default ports dropped, host lowercased); null for `null` or junk. */
function normalOrigin(origin: string): string | null {
  if (origin === 'null') return null;
  try {
    const { origin: serialized } = new URL(origin);
    return serialized === 'null' ? null : serialized;
  } catch {
    return null;
  }
}
