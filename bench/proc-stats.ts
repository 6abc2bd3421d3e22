import { readdirSync, readFileSync } from "node:fs";

/**
 * CPU use and CPU wait of this process and everything it started (Linux /proc), for telling a
 * slow stage from a starved one on a shared machine. Per process: CPU time of all its threads
 * (`stat` utime + stime) and the time its threads spent runnable but not running (`schedstat`,
 * second field: the run-queue wait). Machine-wide: PSI `cpu some` (time in which at least one task
 * waited for a CPU). Where /proc lacks a file (not Linux), the figure is left out.
 */
const TICK_MS = 10; // CLK_TCK is 100 on Linux

type Proc = { pid: number; ppid: number; comm: string; cpuMs: number; waitMs: number };

function read(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

function proc(pid: number): Proc | undefined {
  const stat = read(`/proc/${pid}/stat`);
  if (!stat) return undefined;
  // comm is in parentheses and may hold spaces; the fields after it are space-separated.
  const close = stat.lastIndexOf(")");
  const comm = stat.slice(stat.indexOf("(") + 1, close);
  const f = stat.slice(close + 2).split(" ");
  let waitNs = 0;
  for (const tid of safeDir(`/proc/${pid}/task`)) waitNs += Number(read(`/proc/${pid}/task/${tid}/schedstat`)?.split(" ")[1] ?? 0);
  return { pid, ppid: Number(f[1]), comm, cpuMs: (Number(f[11]) + Number(f[12])) * TICK_MS, waitMs: waitNs / 1e6 };
}

function safeDir(path: string): string[] {
  try {
    return readdirSync(path);
  } catch {
    return [];
  }
}

/** This process and its descendants, by pid. */
function tree(root: number): Map<number, Proc> {
  const all = safeDir("/proc")
    .filter((d) => /^\d+$/.test(d))
    .map((d) => proc(Number(d)))
    .filter((p): p is Proc => p !== undefined);
  const out = new Map<number, Proc>();
  const add = (pid: number) => {
    const p = all.find((x) => x.pid === pid);
    if (!p || out.has(pid)) return;
    out.set(pid, p);
    for (const c of all) if (c.ppid === pid) add(c.pid);
  };
  add(root);
  return out;
}

/** Machine-wide jiffies: busy (user, nice, system, irq, softirq) and stolen by the hypervisor. */
function machine(): { busy: number; steal: number; total: number } {
  const f = (/^cpu +(.*)$/m.exec(read("/proc/stat") ?? "")?.[1] ?? "").split(/\s+/).map(Number);
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = f;
  return { busy: user + nice + system + irq + softirq, steal, total: user + nice + system + idle + iowait + irq + softirq + steal };
}

const psiSomeUs = () => Number(/some .*total=(\d+)/.exec(read("/proc/pressure/cpu") ?? "")?.[1] ?? NaN);

export type Snapshot = { at: number; procs: Map<number, Proc>; psiUs: number; machine: ReturnType<typeof machine> };
export const snapshot = (): Snapshot => ({ at: performance.now(), procs: tree(process.pid), psiUs: psiSomeUs(), machine: machine() });

/**
 * Per group (`group(proc)` names it: processes that ended in between are missed), CPU use and
 * run-queue wait between two snapshots, as a share of one core, and machine-wide PSI.
 */
export function cpuReport(a: Snapshot, b: Snapshot, group: (p: Proc) => string): string[] {
  const s = (b.at - a.at) / 1000;
  const sums = new Map<string, { cpu: number; wait: number; n: number }>();
  for (const [pid, pb] of b.procs) {
    const pa = a.procs.get(pid);
    const g = group(pb);
    const x = sums.get(g) ?? { cpu: 0, wait: 0, n: 0 };
    x.cpu += pb.cpuMs - (pa?.cpuMs ?? 0);
    x.wait += pb.waitMs - (pa?.waitMs ?? 0);
    x.n++;
    sums.set(g, x);
  }
  const lines = [...sums].map(
    ([g, x]) =>
      `  ${g.padEnd(44)} CPU ${((x.cpu / 1000 / s) * 100).toFixed(0).padStart(4)}% of a core, run-queue wait ${((x.wait / 1000 / s) * 100).toFixed(0).padStart(4)}% (thread time) (${x.n} process${x.n === 1 ? "" : "es"})`,
  );
  const ours = [...sums.values()].reduce((n, x) => n + x.cpu, 0) / 1000 / s;
  const m = { busy: b.machine.busy - a.machine.busy, steal: b.machine.steal - a.machine.steal, total: b.machine.total - a.machine.total };
  const cores = m.total / ((s * 1000) / TICK_MS);
  if (m.total > 0) {
    const busyCores = (m.busy / m.total) * cores;
    lines.push(
      `  machine: ${((busyCores / cores) * 100).toFixed(0)}% of ${cores.toFixed(0)} cores busy (these processes ${((ours / cores) * 100).toFixed(0)}%, ` +
        `others ${((Math.max(0, busyCores - ours) / cores) * 100).toFixed(0)}%), stolen ${((m.steal / m.total) * 100).toFixed(0)}%`,
    );
  }
  if (Number.isFinite(a.psiUs))
    lines.push(`  machine: some task waited for a CPU ${(((b.psiUs - a.psiUs) / 1e6 / s) * 100).toFixed(0)}% of the time (PSI cpu some)`);
  return lines;
}
