import ipaddr from "ipaddr.js";

type Parsed = ipaddr.IPv4 | ipaddr.IPv6;

/** Parses an address, unwrapping IPv4-mapped IPv6 (`::ffff:10.0.0.1`) so CIDRs match either form. */
function parse(raw: string | undefined): Parsed | undefined {
  if (!raw) return undefined;
  let s = raw.trim();
  // Forwarded entries may carry brackets and ports: "[::1]:443", "10.0.0.1:8080".
  const bracket = /^\[([^\]]+)\](?::\d+)?$/.exec(s);
  if (bracket) s = bracket[1]!;
  else if (/^\d+\.\d+\.\d+\.\d+:\d+$/.test(s)) s = s.slice(0, s.lastIndexOf(":"));
  if (!ipaddr.isValid(s)) return undefined;
  const ip = ipaddr.parse(s);
  return ip.kind() === "ipv6" && (ip as ipaddr.IPv6).isIPv4MappedAddress() ? (ip as ipaddr.IPv6).toIPv4Address() : ip;
}

export type ClientIpResolver = (socketAddress: string | undefined, header: (name: string) => string | undefined) => string;

/**
 * Client IP (docs/openclaw-contract.md §1.3): the socket address, unless the socket peer is a trusted proxy; then
 * `X-Forwarded-For` walked from the right, skipping trusted and loopback hops; then `X-Real-IP`
 * only when `allowRealIpFallback` is set; else the socket address.
 */
export function createClientIpResolver(opts: { trustedProxies: readonly string[]; allowRealIpFallback: boolean }): ClientIpResolver {
  const ranges = parseRanges(opts.trustedProxies);
  const trusted = (ip: Parsed) => ranges.some(([net, bits]) => net.kind() === ip.kind() && ip.match(net as never, bits));

  if (ranges.length === 0) {
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

function parseRanges(trustedProxies: readonly string[]): [Parsed, number][] {
  return trustedProxies.map((entry) => {
    if (entry.includes("/")) {
      const [ip, bits] = ipaddr.parseCIDR(entry);
      return ip.kind() === "ipv6" && (ip as ipaddr.IPv6).isIPv4MappedAddress()
        ? [(ip as ipaddr.IPv6).toIPv4Address(), bits - 96]
        : [ip, bits];
    }
    const ip = parse(entry);
    if (!ip) throw new Error(`server.trustedProxies: not an IP or CIDR: ${entry}`);
    return [ip, ip.kind() === "ipv4" ? 32 : 128];
  });
}

/** Whether a socket peer is one of `server.trustedProxies`, whose forwarded headers are believed. */
export function createProxyTrust(trustedProxies: readonly string[]): (socketAddress: string | undefined) => boolean {
  const ranges = parseRanges(trustedProxies);
  return (socketAddress) => {
    const ip = parse(socketAddress);
    return ip !== undefined && ranges.some(([net, bits]) => net.kind() === ip.kind() && ip.match(net as never, bits));
  };
}
