import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import type { LookupFunction } from "node:net";
import { parseIp, rangeMatcher } from "../util/ip.js";

export class BlockedAddressError extends Error {
  readonly errorClass = "ssrf_blocked";
  constructor(
    readonly address: string,
    readonly range: string,
  ) {
    super(`delivery to ${address} refused: ${range} address (allow it with webhooks.allowPrivateCidrs)`);
    this.name = "BlockedAddressError";
  }
}

/**
 * The SSRF guard for deliveries (Svix's rule): only public unicast addresses, unless a range is
 * allow-listed (`webhooks.allowPrivateCidrs`, e.g. `["127.0.0.0/8"]` in tests). Names are checked
 * after DNS resolution inside the connection's own `lookup`, so the address that was checked is
 * the address connected to, and a rebinding name cannot slip through; literal IPs (which skip
 * `lookup`) are checked before any connection is attempted.
 */
export function createSsrfGuard(opts: { allowCidrs: readonly string[] }) {
  // IPv4-mapped addresses and ranges are compared as IPv4 (util/ip.ts), so neither form slips past.
  const allowed = rangeMatcher(opts.allowCidrs, "webhooks.allowPrivateCidrs");

  /** Undefined when the address may be used, else the reason. */
  function refuse(address: string): BlockedAddressError | undefined {
    const ip = parseIp(address);
    if (!ip) return new BlockedAddressError(address, "unparseable");
    if (allowed(ip)) return undefined;
    const range = ip.range();
    return range === "unicast" ? undefined : new BlockedAddressError(address, range);
  }

  /** Checks a URL before a request: scheme, and the host when it is a literal IP. */
  function checkUrl(url: URL): BlockedAddressError | Error | undefined {
    if (url.protocol !== "http:" && url.protocol !== "https:") return new Error(`unsupported scheme ${url.protocol}`);
    const host = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
    return parseIp(host) ? refuse(host) : undefined;
  }

  /** A `lookup` for undici's `connect` options: resolves, then refuses any blocked address. */
  const lookup: LookupFunction = (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, "", 0);
      const list = addresses as LookupAddress[];
      for (const a of list) {
        const blocked = refuse(a.address);
        if (blocked) return callback(blocked, "", 0);
      }
      if ((options as { all?: boolean }).all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, list);
      const first = list[0]!;
      callback(null, first.address, first.family);
    });
  };

  return { refuse, checkUrl, lookup };
}

export type SsrfGuard = ReturnType<typeof createSsrfGuard>;
