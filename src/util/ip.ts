import ipaddr from "ipaddr.js";

/**
 * IP addresses and ranges, in one place: parsing with IPv4-mapped IPv6 (`::ffff:10.0.0.1`)
 * unwrapped to IPv4 (ipaddr.js's `process`), so a range matches either form of an address.
 */
export type Ip = ipaddr.IPv4 | ipaddr.IPv6;

/** An address, or undefined. Forwarded entries may carry brackets and ports: "[::1]:443", "10.0.0.1:8080". */
export function parseIp(raw: string | undefined): Ip | undefined {
  if (!raw) return undefined;
  let s = raw.trim();
  const bracket = /^\[([^\]]+)\](?::\d+)?$/.exec(s);
  if (bracket) s = bracket[1]!;
  else if (/^\d+\.\d+\.\d+\.\d+:\d+$/.test(s)) s = s.slice(0, s.lastIndexOf(":"));
  return ipaddr.isValid(s) ? ipaddr.process(s) : undefined;
}

/** An address or a CIDR (config validation). */
export function isIpOrCidr(v: string): boolean {
  if (!v.includes("/")) return ipaddr.isValid(v);
  try {
    ipaddr.parseCIDR(v);
    return true;
  } catch {
    return false;
  }
}

/** A range: a CIDR, or one address as its own /32 or /128; an IPv4-mapped range as IPv4. Throws on anything else. */
function parseRange(entry: string, key: string): [Ip, number] {
  if (entry.includes("/")) {
    const [ip, bits] = ipaddr.parseCIDR(entry);
    return ip.kind() === "ipv6" && (ip as ipaddr.IPv6).isIPv4MappedAddress() ? [(ip as ipaddr.IPv6).toIPv4Address(), bits - 96] : [ip, bits];
  }
  const ip = parseIp(entry);
  if (!ip) throw new Error(`${key}: not an IP or CIDR: ${entry}`);
  return [ip, ip.kind() === "ipv4" ? 32 : 128];
}

/** Whether an address is in any of the ranges (CIDRs or single addresses); `key` names the config key in an error. */
export function rangeMatcher(entries: readonly string[], key: string): (ip: Ip) => boolean {
  const ranges = entries.map((e) => parseRange(e, key));
  return (ip) => ranges.some(([net, bits]) => net.kind() === ip.kind() && ip.match(net as never, bits));
}
