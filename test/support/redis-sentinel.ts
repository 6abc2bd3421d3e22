import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ask, parseInfo, type RedisNode, startRedisNode, tryAsk, waitFor } from "./redis-node.js";

export type TestRedisSentinel = {
  /** The master group name the sentinels monitor ("mymaster"). */
  name: string;
  /** The three sentinels as "127.0.0.1:port". */
  sentinels: string[];
  /** The same as `{ host, port }`, for ioredis's `sentinels` option. */
  sentinelAddrs: { host: string; port: number }[];
  /** The two data nodes (the first is the master at start); PIDs stay current across restarts. */
  servers: { host: "127.0.0.1"; port: number; pid: number }[];
  /** The current master as the sentinels report it (SENTINEL get-master-addr-by-name), "127.0.0.1:port". */
  master: () => Promise<string>;
  /** SIGKILLs the current master's process by PID. */
  killMaster: () => Promise<{ killed: string; killedAt: number }>;
  /**
   * `SENTINEL FAILOVER`: promotes the replica while the old master stays up. Sentinel turns the old
   * master into a replica only some 10 s later; clients still on it write to it meanwhile, and those
   * writes are lost when it resyncs (docs/redis-topologies-notes.md).
   */
  failover: () => Promise<{ killed: string; killedAt: number }>;
  /**
   * Resolves once every sentinel reports a master other than the one killed (or failed over) last
   * and that server answers ROLE master; `ms` is measured from the kill.
   */
  waitForFailover: (opts?: { timeoutMs?: number }) => Promise<{ master: string; ms: number }>;
  /** Starts a killed server again on its port and data; the sentinels make it a replica of the new master. */
  restart: (addr: string, opts?: { timeoutMs?: number }) => Promise<void>;
  /** Kills every process by PID and removes the folder; safe to call twice. */
  dispose: () => Promise<void>;
};

/**
 * A real Sentinel set on loopback: a master, one replica (`--replicaof`) and three sentinels
 * (`redis-server <conf> --sentinel`; Debian's redis-server package ships no `redis-sentinel`)
 * monitoring `name` with quorum 2. It resolves once every sentinel sees the replica and the other two
 * sentinels and `SENTINEL CKQUORUM` says a failover could be authorized.
 *
 * Options: `downAfterMs` (down-after-milliseconds, default 1000: the master is subjectively down
 * after this long; objectively down and failed over a second or three later); `failoverTimeoutMs`
 * (default 5000). Data nodes keep an AOF fsynced on every write; replication is asynchronous, so a
 * write acknowledged by the master just before it dies may be missing on the promoted replica (the
 * window is tiny on loopback). Sentinel rewrites its config file, so each lives in the temp dir.
 */
export async function startRedisSentinel(
  opts: { name?: string; downAfterMs?: number; failoverTimeoutMs?: number; args?: string[]; startTimeoutMs?: number } = {},
): Promise<TestRedisSentinel> {
  const name = opts.name ?? "mymaster";
  const dir = mkdtempSync(join(tmpdir(), "ocwh-sentinel-"));
  const startTimeoutMs = opts.startTimeoutMs ?? 30_000;
  const data: RedisNode[] = [];
  const sentinels: RedisNode[] = [];
  let lastKill: { killed: string; killedAt: number } | undefined;
  let disposed = false;

  const dispose = async () => {
    if (disposed) return;
    disposed = true;
    await Promise.all([...data, ...sentinels].map((p) => p.kill()));
    rmSync(dir, { recursive: true, force: true });
  };
  const dataNode = async (replicaOf?: number) => {
    const nodeDir = join(dir, `data-${data.length}`);
    mkdirSync(nodeDir);
    const node = await startRedisNode({
      cwd: nodeDir,
      args: ([p]) => [
        ...["--port", String(p), "--bind", "127.0.0.1", "--dir", nodeDir],
        ...["--appendonly", "yes", "--appendfsync", "always", "--save", ""],
        // A replica's first sync otherwise waits 5 s (repl-diskless-sync-delay) for more replicas to join.
        ...["--repl-diskless-sync-delay", "0"],
        ...(replicaOf ? ["--replicaof", "127.0.0.1", String(replicaOf)] : []),
        ...(opts.args ?? []),
      ],
    });
    data.push(node);
    return node;
  };
  /** What one sentinel says the master is, or undefined when it does not answer. */
  const reportedBy = async (s: RedisNode) => {
    const addr = (await tryAsk(s.port, ["SENTINEL", "GET-MASTER-ADDR-BY-NAME", name])) as string[] | null | undefined;
    return addr ? `${addr[0]}:${addr[1]}` : undefined;
  };
  const isMaster = async (addr: string) => ((await tryAsk(Number(addr.split(":")[1]), ["ROLE"])) as unknown[] | undefined)?.[0] === "master";
  const serverAt = (addr: string) => {
    const n = data.find((d) => `127.0.0.1:${d.port}` === addr);
    if (!n) throw new Error(`${addr} is not a server of this test Sentinel set`);
    return n;
  };

  try {
    const master = await dataNode();
    const replica = await dataNode(master.port);
    // Sentinels find replicas in the master's INFO: start them once the replica is linked.
    await waitFor(
      "replica linked to master",
      async () => (parseInfo(await ask(replica.port, ["INFO", "replication"])).master_link_status === "up" ? true : undefined),
      startTimeoutMs,
    );
    for (let i = 0; i < 3; i++) {
      const conf = join(dir, `sentinel-${i}.conf`);
      sentinels.push(
        await startRedisNode({
          cwd: dir,
          readyText: "+monitor master",
          args: ([p]) => {
            // Written at each launch: the port is only known here, and sentinel rewrites the file.
            writeFileSync(
              conf,
              [
                `port ${p}`,
                "bind 127.0.0.1",
                `dir ${dir}`,
                `sentinel monitor ${name} 127.0.0.1 ${master.port} 2`,
                `sentinel down-after-milliseconds ${name} ${opts.downAfterMs ?? 1_000}`,
                `sentinel failover-timeout ${name} ${opts.failoverTimeoutMs ?? 5_000}`,
                `sentinel parallel-syncs ${name} 1`,
                "",
              ].join("\n"),
            );
            return [conf, "--sentinel"];
          },
        }),
      );
    }
    await waitFor(
      "every sentinel sees the replica and the two other sentinels, and quorum can be reached",
      async () => {
        for (const s of sentinels) {
          const replicas = (await ask(s.port, ["SENTINEL", "REPLICAS", name])) as string[][];
          const others = (await ask(s.port, ["SENTINEL", "SENTINELS", name])) as string[][];
          const flags = (r: string[]) => r[r.indexOf("flags") + 1];
          if (replicas.length !== 1 || flags(replicas[0]!) !== "slave" || others.length !== 2) return undefined;
          if (!String(await ask(s.port, ["SENTINEL", "CKQUORUM", name])).startsWith("OK")) return undefined;
        }
        return true;
      },
      startTimeoutMs,
    );
  } catch (err) {
    const logs = [...data, ...sentinels].map((p) => `--- :${p.port}\n${p.output().slice(-1_000)}`).join("\n");
    await dispose();
    throw new Error(`startRedisSentinel: ${(err as Error).message}\n${logs}`, { cause: err });
  }

  const current = async () => {
    for (const s of sentinels) {
      const addr = await reportedBy(s);
      if (addr) return addr;
    }
    throw new Error("no sentinel answers SENTINEL GET-MASTER-ADDR-BY-NAME");
  };
  return {
    name,
    sentinels: sentinels.map((s) => `127.0.0.1:${s.port}`),
    sentinelAddrs: sentinels.map((s) => ({ host: "127.0.0.1", port: s.port })),
    get servers() {
      return data.map((d) => ({ host: d.host, port: d.port, pid: d.pid }));
    },
    master: current,
    killMaster: async () => {
      const killed = await current();
      await serverAt(killed).kill();
      lastKill = { killed, killedAt: Date.now() };
      return lastKill;
    },
    failover: async () => {
      const killed = await current();
      const answer = await ask(sentinels[0]!.port, ["SENTINEL", "FAILOVER", name]);
      if (answer !== "OK") throw new Error(`SENTINEL FAILOVER answered ${String(answer)}`);
      lastKill = { killed, killedAt: Date.now() };
      return lastKill;
    },
    waitForFailover: async ({ timeoutMs = 20_000 } = {}) => {
      const k = lastKill;
      if (!k) throw new Error("waitForFailover: no master was killed");
      const master = await waitFor(
        `sentinel failover away from ${k.killed}`,
        async () => {
          const seen = new Set(await Promise.all(sentinels.map(reportedBy)));
          const [addr] = seen;
          return seen.size === 1 && addr && addr !== k.killed && (await isMaster(addr)) ? addr : undefined;
        },
        timeoutMs,
      );
      return { master, ms: Date.now() - k.killedAt };
    },
    restart: async (addr, { timeoutMs = 20_000 } = {}) => {
      const node = serverAt(addr);
      await node.launch();
      // It starts as the master it was; a sentinel notices the stale master and sends REPLICAOF
      // (within about one INFO period, 10 s, at worst).
      await waitFor(
        `${addr} rejoining as a synced replica`,
        async () => {
          const repl = parseInfo(await ask(node.port, ["INFO", "replication"]));
          return repl.role === "slave" && repl.master_link_status === "up" ? true : undefined;
        },
        timeoutMs,
      );
    },
    dispose,
  };
}
