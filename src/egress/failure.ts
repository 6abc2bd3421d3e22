/**
 * Transient or permanent: whether storing an event failed because Redis could not be reached or
 * could not take writes for now (wait and try again: the same event will succeed), or because of
 * the event or the data it meets (a script or BullMQ refusing it, a payload that does not
 * serialise: trying again cannot help, so it is parked and the next event goes ahead).
 */

/** Socket errors: Redis unreachable, or the connection dropped mid-command. */
const NET_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ECONNABORTED",
  "ENOTCONN",
]);
/**
 * Redis replies that mean "not now": loading, busy script, replica, failover, out of memory, disk.
 * MOVED and ASK (the slot is elsewhere now) reach the caller when ioredis cannot follow them: as
 * the last error of a command that ran out of redirections during a failover, and from a Cluster
 * pipeline (BullMQ's, or ours while request connections auto-pipelined), which ioredis re-sends
 * only when every reply in it is the same redirection (measured before this was transient: 52 and
 * 171 of 2,000 events parked in two runs of test/reliability/failover.test.ts). Once the client
 * has refreshed its slot map the same command succeeds: here within the publisher's 1 s
 * Retry-After.
 */
const REDIS_NOT_NOW = /^(LOADING|BUSY|MASTERDOWN|READONLY|TRYAGAIN|CLUSTERDOWN|OOM|NOREPLICAS|MISCONF|UNBLOCKED|MOVED|ASK)\b/;
/**
 * ioredis and BullMQ's own words for a connection that is not there, including a Cluster in a
 * failover (a command that ran out of redirections while a replica was being promoted, a slot map
 * that could not be refreshed) and sentinels that could not name a primary.
 */
const CLIENT_OFFLINE =
  /Connection is clos(ed|ing)|Stream isn't writeable|enableOfflineQueue|max retries per request|Command timed out|Socket closed unexpectedly|Too many Cluster redirections|Cluster isn't ready|Failed to refresh slots cache|None of startup nodes is available|All sentinels are unreachable/i;

export function isTransient(err: unknown): boolean {
  for (let e = err, depth = 0; e && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    if (typeof e !== "object") return false;
    const { name, code, message } = e as { name?: string; code?: string; message?: string };
    if (name === "MaxRetriesPerRequestError") return true;
    if (code && NET_CODES.has(code)) return true;
    if (typeof message === "string" && (REDIS_NOT_NOW.test(message) || CLIENT_OFFLINE.test(message))) return true;
  }
  return false;
}

/** A short reason for logs and the parked list (an error message, cut to 500 characters). */
export function reasonOf(err: unknown): string {
  const m = err instanceof Error ? `${err.name === "Error" || err.name === "ReplyError" ? "" : `${err.name}: `}${err.message}` : String(err);
  return m.length > 500 ? `${m.slice(0, 500)}…` : m;
}
