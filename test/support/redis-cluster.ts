import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ask, parseInfo, type RedisNode, startRedisNode, tryAsk, waitFor } from "./redis-node.js";

export type ClusterNode = {
  host: "127.0.0.1";
  port: number;
  /** PID of the running process (the last one after a kill). */
  pid: number;
  /** As the cluster last reported it to this helper; "dead" after `killMaster` until `restart`. */
  role: "master" | "replica" | "dead";
};

export type TestRedisCluster = {
  /** The six nodes; `role` is refreshed by `masters()`, `waitForFailover()` and `restart()`. */
  nodes: ClusterNode[];
  /** Every node as `redis://127.0.0.1:port`: any live one works as a startup node. */
  urls: string[];
  /** `[{ host, port }]` of every node, for `new Cluster(startupNodes)`. */
  startupNodes: { host: string; port: number }[];
  /** The current masters, asked of the cluster (live nodes only). */
  masters: () => Promise<ClusterNode[]>;
  /** The slot of a key (CLUSTER KEYSLOT; `{tag}` rules apply), or the number itself. */
  slotOf: (slotOrKey: number | string) => Promise<number>;
  /** The live master serving a slot, as every live node sees it. */
  masterOf: (slotOrKey: number | string) => Promise<ClusterNode>;
  /** SIGKILLs the master owning the slot of `slotOrKey` (by PID) and says which one and when. */
  killMaster: (slotOrKey: number | string) => Promise<{ node: ClusterNode; slot: number; killedAt: number }>;
  /**
   * Resolves once a replica was promoted for the last killed master's slots: every live node
   * reports `cluster_state:ok` and the same live master for the slot, and that master answers
   * ROLE master. `ms` is measured from the kill.
   */
  waitForFailover: (opts?: { timeoutMs?: number }) => Promise<{ master: ClusterNode; ms: number }>;
  /** Starts a killed node again on its port, data and nodes.conf; resolves once it is a synced replica. */
  restart: (node: ClusterNode, opts?: { timeoutMs?: number }) => Promise<void>;
  /** Kills every process by PID and removes the folder; safe to call twice. */
  dispose: () => Promise<void>;
};

type NodeLine = { id: string; port: number; flags: string[]; masterId: string; slots: [number, number][] };

/** `CLUSTER NODES` parsed: `<id> <ip:port@bus> <flags> <master|-> <ping> <pong> <epoch> <link> <slot>…`. */
function parseNodes(text: unknown): NodeLine[] {
  return String(text ?? "")
    .split("\n")
    .filter((l) => l.trim())
    .map((line) => {
      const [id, addr, flags, masterId, , , , , ...slots] = line.trim().split(" ");
      return {
        id: id!,
        port: Number(addr!.split("@")[0]!.split(":")[1]),
        flags: flags!.split(","),
        masterId: masterId!,
        // Migrating/importing entries ("[5460->-id]") are not ownership.
        slots: slots.filter((s) => !s.startsWith("[")).map((s) => (s.includes("-") ? (s.split("-").map(Number) as [number, number]) : [Number(s), Number(s)])),
      };
    });
}

const owns = (n: NodeLine, slot: number) => n.slots.some(([a, b]) => slot >= a && slot <= b);

/**
 * A real Redis Cluster on loopback: six `redis-server --cluster-enabled yes` processes (three masters,
 * each with one replica) joined by `redis-cli --cluster create --cluster-replicas 1`, resolved once
 * every node reports `cluster_state:ok`, all 16384 slots are assigned and every replica's link is up.
 *
 * Options: `nodeTimeoutMs` (cluster-node-timeout, default 1000: a dead master is marked FAIL after
 * about this long, then its replica wins an election within about a second); `args` added to every
 * node. Each node has its own folder (AOF with `appendfsync always`, nodes.conf) in one temp dir.
 *
 * What persists: a master fsyncs every write before answering, so a master restarted from its own
 * AOF loses nothing it acknowledged. Replication is asynchronous, though: after a failover the
 * promoted replica holds only what had reached it, and the old master, restarted, rejoins as its
 * replica and drops whatever it had that the replica never got. On loopback that window is tiny; on
 * a network it is not, and neither AOF nor `min-replicas-to-write` closes it (WAIT narrows it).
 */
export async function startRedisCluster(opts: { nodeTimeoutMs?: number; args?: string[]; startTimeoutMs?: number } = {}): Promise<TestRedisCluster> {
  const dir = mkdtempSync(join(tmpdir(), "ocwh-cluster-"));
  const procs: RedisNode[] = [];
  const nodes: ClusterNode[] = [];
  const startTimeoutMs = opts.startTimeoutMs ?? 30_000;
  let lastKill: { node: ClusterNode; slot: number; killedAt: number } | undefined;
  let disposed = false;

  const dispose = async () => {
    if (disposed) return;
    disposed = true;
    await Promise.all(procs.map((p) => p.kill()));
    rmSync(dir, { recursive: true, force: true });
  };

  const procOf = (node: ClusterNode) => procs[nodes.indexOf(node)]!;
  const live = () => nodes.filter((n) => procOf(n).alive());
  const nodeAt = (port: number) => {
    const n = nodes.find((x) => x.port === port);
    if (!n) throw new Error(`no test cluster node on port ${port}`);
    return n;
  };

  /** The cluster as one live node sees it, roles copied onto `nodes`. */
  const view = async (): Promise<NodeLine[]> => {
    for (const n of live()) {
      const text = await tryAsk(n.port, ["CLUSTER", "NODES"]);
      if (text === undefined) continue;
      const lines = parseNodes(text);
      for (const l of lines) {
        const node = nodes.find((x) => x.port === l.port);
        if (node && procOf(node).alive() && !l.flags.includes("fail")) node.role = l.flags.includes("master") ? "master" : "replica";
      }
      return lines;
    }
    throw new Error("no cluster node answers");
  };

  const slotOf = async (slotOrKey: number | string) => {
    if (typeof slotOrKey === "number") return slotOrKey;
    for (const n of live()) {
      const slot = await tryAsk(n.port, ["CLUSTER", "KEYSLOT", slotOrKey]);
      if (slot !== undefined) return Number(slot);
    }
    throw new Error("no cluster node answers CLUSTER KEYSLOT");
  };

  /** The master every live node agrees serves `slot`, when it is alive, healthy and answers ROLE master. */
  const agreedMaster = async (slot: number): Promise<ClusterNode | undefined> => {
    let port: number | undefined;
    for (const n of live()) {
      const [info, text] = await Promise.all([tryAsk(n.port, ["CLUSTER", "INFO"]), tryAsk(n.port, ["CLUSTER", "NODES"])]);
      if (parseInfo(info).cluster_state !== "ok") return undefined;
      const owner = parseNodes(text).find((l) => l.flags.includes("master") && !l.flags.includes("fail") && owns(l, slot));
      if (!owner || (port !== undefined && owner.port !== port)) return undefined;
      port = owner.port;
    }
    if (port === undefined) return undefined;
    const node = nodeAt(port);
    if (!procOf(node).alive()) return undefined;
    const role = (await tryAsk(port, ["ROLE"])) as unknown[] | undefined;
    if (role?.[0] !== "master") return undefined;
    await view();
    return node;
  };

  try {
    for (let i = 0; i < 6; i++) {
      const nodeDir = join(dir, `node-${i}`);
      mkdirSync(nodeDir);
      // Two ports per node: the client port and the cluster bus (cluster-port, Redis ≥ 7), so the
      // bus is not the default port + 10000, which may be taken or above 65535.
      const p = await startRedisNode({
        cwd: nodeDir,
        ports: 2,
        args: ([port, bus]) => [
          ...["--port", String(port), "--bind", "127.0.0.1", "--dir", nodeDir],
          ...["--cluster-enabled", "yes", "--cluster-port", String(bus), "--cluster-config-file", join(nodeDir, "nodes.conf")],
          ...["--cluster-node-timeout", String(opts.nodeTimeoutMs ?? 1_000), "--cluster-announce-ip", "127.0.0.1"],
          // A replica that lost its master a while ago still stands for election (tests kill and restart at will).
          ...["--cluster-replica-validity-factor", "0"],
          ...["--appendonly", "yes", "--appendfsync", "always", "--save", ""],
          // A replica's first sync otherwise waits 5 s (repl-diskless-sync-delay) for more replicas to join.
          ...["--repl-diskless-sync-delay", "0"],
          ...(opts.args ?? []),
        ],
      });
      procs.push(p);
      nodes.push({ host: "127.0.0.1", port: p.port, pid: p.pid, role: "master" });
    }
    await clusterCreate(
      nodes.map((n) => `127.0.0.1:${n.port}`),
      startTimeoutMs,
    );
    await waitFor(
      "cluster_state:ok with 16384 slots on every node and every replica linked",
      async () => {
        for (const n of nodes) {
          const info = parseInfo(await ask(n.port, ["CLUSTER", "INFO"]));
          if (info.cluster_state !== "ok" || info.cluster_slots_ok !== "16384" || info.cluster_known_nodes !== "6") return undefined;
          const repl = parseInfo(await ask(n.port, ["INFO", "replication"]));
          if (repl.role === "slave" && repl.master_link_status !== "up") return undefined;
        }
        const lines = await view();
        return lines.filter((l) => l.flags.includes("master")).length === 3 ? true : undefined;
      },
      startTimeoutMs,
    );
  } catch (err) {
    const logs = procs.map((p) => `--- :${p.port}\n${p.output().slice(-1_000)}`).join("\n");
    await dispose();
    throw new Error(`startRedisCluster: ${(err as Error).message}\n${logs}`, { cause: err });
  }

  return {
    nodes,
    urls: nodes.map((n) => `redis://127.0.0.1:${n.port}`),
    startupNodes: nodes.map((n) => ({ host: n.host, port: n.port })),
    masters: async () => {
      const lines = await view();
      // A killed master may still be listed (not yet flagged fail): only running processes count.
      return lines
        .filter((l) => l.flags.includes("master") && !l.flags.includes("fail"))
        .map((l) => nodeAt(l.port))
        .filter((n) => procOf(n).alive());
    },
    slotOf,
    masterOf: async (slotOrKey) => {
      const slot = await slotOf(slotOrKey);
      return waitFor(`a live master agreed for slot ${slot}`, () => agreedMaster(slot), 5_000);
    },
    killMaster: async (slotOrKey) => {
      const slot = await slotOf(slotOrKey);
      const node = await waitFor(`a live master agreed for slot ${slot}`, () => agreedMaster(slot), 5_000);
      await procOf(node).kill();
      node.role = "dead";
      lastKill = { node, slot, killedAt: Date.now() };
      return lastKill;
    },
    waitForFailover: async ({ timeoutMs = 20_000 } = {}) => {
      const k = lastKill;
      if (!k) throw new Error("waitForFailover: no master was killed");
      const master = await waitFor(
        `failover of slot ${k.slot} away from :${k.node.port}`,
        async () => {
          const m = await agreedMaster(k.slot);
          return m && m !== k.node ? m : undefined;
        },
        timeoutMs,
      );
      return { master, ms: Date.now() - k.killedAt };
    },
    restart: async (node, { timeoutMs = 20_000 } = {}) => {
      const p = procOf(node);
      await p.launch();
      node.pid = p.pid;
      // It comes back as the master it was (nodes.conf); the cluster's newer config epoch for its
      // slots turns it into a replica of the master that replaced it, which it then syncs from.
      await waitFor(
        `:${node.port} rejoining as a synced replica`,
        async () => {
          const repl = parseInfo(await ask(node.port, ["INFO", "replication"]));
          const info = parseInfo(await ask(node.port, ["CLUSTER", "INFO"]));
          return repl.role === "slave" && repl.master_link_status === "up" && info.cluster_state === "ok" ? true : undefined;
        },
        timeoutMs,
      );
      node.role = "replica";
    },
    dispose,
  };
}

/** `redis-cli --cluster create … --cluster-replicas 1 --cluster-yes`, bounded; throws with its output. */
function clusterCreate(addrs: string[], timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn("redis-cli", ["--cluster", "create", ...addrs, "--cluster-replicas", "1", "--cluster-yes"], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    p.stdout!.on("data", (d) => (out += d));
    p.stderr!.on("data", (d) => (out += d));
    const timer = setTimeout(() => {
      p.kill("SIGKILL");
      reject(new Error(`redis-cli --cluster create timed out after ${timeoutMs} ms: ${out.slice(-2_000)}`));
    }, timeoutMs);
    p.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    p.once("exit", (code) => {
      clearTimeout(timer);
      if (code === 0 && out.includes("All 16384 slots covered")) resolve();
      else reject(new Error(`redis-cli --cluster create exited (${code}): ${out.slice(-2_000)}`));
    });
  });
}
