import { parseIp as parse, rangeMatcher, type Ip } from "../util/ip.js";

export type ClientIpResolver = (socketAddress: string | undefined, header: (name: string) => string | undefined) => string;

/**
 * Client IP (docs/openclaw-contract.md §1.3): the socket address, unless the socket peer is a trusted proxy; then
 * `X-Forwarded-For` walked from the right, skipping trusted and loopback hops; then `X-Real-IP`
 * only when `allowRealIpFallback` is set; else the socket address.
 */
export function createClientIpResolver(opts: { trustedProxies: readonly string[]; allowRealIpFallback: boolean }): ClientIpResolver {
  const trusted: (ip: Ip) => boolean = rangeMatcher(opts.trustedProxies, "server.trustedProxies");

  if (opts.trustedProxies.length === 0) {
    // No trusted proxies: forwarded headers are never read, so skip parsing on the hot path.
    return (socketAddress) =>
      socketAddress === undefined ? "unknown" : socketAddress.startsWith("::ffff:") && socketAddress.includes(".") ? socketAddress.slice(7) : socketAddress;
  }
  return (socketAddress, header) => {
    const remote = parse(socketAddress);
    const fallback = remote?.toString() ?? socketAddress ?? "unknown";
    if (!remote || !trusted(remote)) return fallback;
    const xff = header("x-forwarded-for");
    if (xff) {
      const hops = xff.split(",");
      for (let i = hops.length - 1; i >= 0; i--) {
        const hop = parse(hops[i]);
        if (!hop) break; // a garbled entry ends the trusted chain
        if (hop.range() === "loopback" || trusted(hop)) continue;
        return hop.toString();
      }
    }
    if (opts.allowRealIpFallback) {
      const real = parse(header("x-real-ip"));
      if (real) return real.toString();
    }
    return fallback;
  };
}

/** Whether a socket peer is one of `server.trustedProxies`, whose forwarded headers are believed. */
export function createProxyTrust(trustedProxies: readonly string[]): (socketAddress: string | undefined) => boolean {
  const trusted = rangeMatcher(trustedProxies, "server.trustedProxies");
  return (socketAddress) => {
    const ip = parse(socketAddress);
    return ip !== undefined && trusted(ip);
  };
}
