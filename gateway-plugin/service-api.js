// The openclaw-webhooks service's admin API, as the bridge plugin calls it: from the `openclaw
// deliveries` CLI (its own process) and from the Control UI's Gateway methods (the Gateway
// process). The URL and the admin token come from this plugin's config (`service.url`,
// `service.adminToken`, a string or an env/file SecretRef).

/** Why a call failed, as an operator can act on it; the CLI maps each to an exit code. */
export const FAILURE = { usage: "usage", unreachable: "unreachable", token: "token", refused: "refused" };

export class ServiceError extends Error {
  /** `status`: the service's HTTP status, for a refusal. */
  constructor(kind, message, status) {
    super(message);
    this.kind = kind;
    this.status = status;
  }
}

/** One admin API call (`path` under /admin/api); the answer's `result`, or a ServiceError. */
export async function callAdmin(cfg, resolveToken, method, path) {
  const url = cfg?.url;
  if (!url) throw new ServiceError(FAILURE.usage, "plugins.entries.webhooks-bridge.config.service.url is not set in openclaw.json");
  const token = await resolveToken(cfg.adminToken);
  if (!token)
    throw new ServiceError(
      FAILURE.usage,
      "plugins.entries.webhooks-bridge.config.service.adminToken does not resolve (set it, or the env var / file it names)",
    );
  let res;
  try {
    res = await fetch(`${url.replace(/\/+$/, "")}/admin/api${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(method === "POST" ? { "content-type": "application/json" } : {}) },
      ...(method === "POST" ? { body: "{}" } : {}),
      signal: AbortSignal.timeout(cfg.timeoutMs ?? 10_000),
    });
  } catch (err) {
    throw new ServiceError(FAILURE.unreachable, `cannot reach the webhook service at ${url} (${err?.cause?.code ?? err?.name ?? "error"})`);
  }
  const body = await res.json().catch(() => ({}));
  if (res.status === 401) throw new ServiceError(FAILURE.token, `the webhook service at ${url} refused the admin token (401)`);
  if (res.status === 404 && !body.code) throw new ServiceError(FAILURE.token, `the webhook service at ${url} has no admin API (admin.token is not set there)`);
  if (!res.ok) throw new ServiceError(FAILURE.refused, `${body.code ?? res.status}: ${body.error ?? "refused"}`, res.status);
  return body.result ?? body;
}

export const DELIVERY_STATUSES = ["failed", "delivered", "pending"];

/** The query string of a deliveries list; throws a usage ServiceError on a bad value. */
export function deliveriesQuery({ limit = 20, status, endpoint } = {}) {
  const n = Number(limit);
  if (!Number.isInteger(n) || n < 1 || n > 1000) throw new ServiceError(FAILURE.usage, "the number of deliveries is from 1 to 1000");
  if (status && !DELIVERY_STATUSES.includes(status)) throw new ServiceError(FAILURE.usage, `the status is ${DELIVERY_STATUSES.join(", ")}`);
  const q = new URLSearchParams({ limit: String(n), ...(status ? { status } : {}), ...(endpoint ? { endpoint } : {}) });
  return `/deliveries?${q}`;
}
