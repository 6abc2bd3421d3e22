import { execFile, execFileSync, spawnSync } from "node:child_process";
import { resolve } from "node:path";
import { promisify } from "node:util";

/**
 * Podman as it works on the test machines (docs/containers.md): runc, a containers.conf without
 * default ulimits, cgroupfs, host networking. scripts/podman-env.sh writes the containers.conf;
 * scripts/container-base.sh builds the stand-in `node:24-bookworm-slim` (cached by content).
 */
const ROOT = resolve(import.meta.dirname, "../..");
const pexec = promisify(execFile);

function containersConf(): string {
  return execFileSync("bash", ["-c", `. "${ROOT}/scripts/podman-env.sh" && echo "$CONTAINERS_CONF"`], { encoding: "utf8" }).trim();
}

let conf: string | undefined;
const env = () => ({ ...process.env, CONTAINERS_CONF: (conf ??= containersConf()) });

/** Fails (does not skip) when podman is missing: `.ci/run` installs it. */
export function requirePodman(): void {
  const r = spawnSync("podman", ["--version"], { encoding: "utf8" });
  if (r.status !== 0) throw new Error("podman is not installed (apt-get install podman runc debootstrap; .ci/run does this)");
}

/** Runs `podman --runtime runc ARGS`; resolves with stdout, rejects with stderr on failure. */
export async function podman(
  args: string[],
  opts: { timeoutMs?: number; allowFail?: boolean } = {},
): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const { stdout, stderr } = await pexec("podman", ["--runtime", "runc", ...args], {
      env: env(),
      cwd: ROOT,
      timeout: opts.timeoutMs ?? 60_000,
      maxBuffer: 64 * 1024 * 1024,
    });
    return { stdout, stderr, code: 0 };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; code?: number | string };
    if (opts.allowFail) return { stdout: e.stdout ?? "", stderr: e.stderr ?? "", code: typeof e.code === "number" ? e.code : 1 };
    throw new Error(`podman ${args.join(" ")} failed (${e.code}):\n${(e.stderr ?? "").slice(-3000)}`);
  }
}

/** The stand-in base image (node:24-bookworm-slim); seconds taken. */
export async function ensureBaseImage(): Promise<number> {
  const t = Date.now();
  await pexec("bash", [resolve(ROOT, "scripts/container-base.sh")], { env: env(), cwd: ROOT, timeout: 600_000, maxBuffer: 16 * 1024 * 1024 });
  return (Date.now() - t) / 1000;
}

/** `podman build --format docker` (keeps HEALTHCHECK) on host networking; seconds taken. */
export async function buildImage(tag: string, dockerfile = "Dockerfile"): Promise<number> {
  const t = Date.now();
  await podman(["build", "--format", "docker", "--network=host", "--pull=never", "-f", dockerfile, "-t", tag, "."], { timeoutMs: 900_000 });
  return (Date.now() - t) / 1000;
}

export async function imageSize(tag: string): Promise<number> {
  return Number((await podman(["image", "inspect", tag, "--format", "{{.Size}}"])).stdout.trim());
}

export const mb = (bytes: number) => `${(bytes / 1e6).toFixed(0)} MB`;

/**
 * `podman run -d` on host networking. The healthcheck timer is off (`--health-interval=disable`:
 * podman would schedule it with systemd, which these machines do not run); `podman healthcheck run`
 * still runs the image's HEALTHCHECK on demand.
 */
export async function runContainer(
  name: string,
  image: string,
  opts: { env?: Record<string, string>; volumes?: string[]; cmd?: string[] } = {},
): Promise<void> {
  await podman(["rm", "-f", "--ignore", name], { allowFail: true });
  const args = ["run", "-d", "--name", name, "--network=host", "--health-interval=disable"];
  for (const [k, v] of Object.entries(opts.env ?? {})) args.push("-e", `${k}=${v}`);
  for (const v of opts.volumes ?? []) args.push("-v", v);
  await podman([...args, image, ...(opts.cmd ?? [])]);
}

export async function logs(name: string): Promise<string> {
  const r = await podman(["logs", name], { allowFail: true });
  return r.stdout + r.stderr;
}

/** Stops (SIGTERM, then the grace period) and removes a container; never throws. */
export async function removeContainer(name: string): Promise<void> {
  await podman(["rm", "-f", "-t", "5", "--ignore", name], { allowFail: true, timeoutMs: 60_000 });
}
