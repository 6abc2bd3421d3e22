// Installs the pinned OpenClaw Gateway once, outside the repo, and prints the path of its CLI
// entry. Run through `npm run`, so the node@24 devDependency is first on PATH (OpenClaw needs
// Node >= 24.16; its install scripts check). Cache: $OPENCLAW_WEBHOOKS_CACHE or ~/.cache/openclaw-webhooks.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

export const OPENCLAW_VERSION = "2026.9.6";
const root = join(process.env.OPENCLAW_WEBHOOKS_CACHE ?? join(homedir(), ".cache", "openclaw-webhooks"), `openclaw-${OPENCLAW_VERSION}`);
const pkg = join(root, "node_modules", "openclaw", "package.json");
const installed = existsSync(pkg) && JSON.parse(readFileSync(pkg, "utf8")).version === OPENCLAW_VERSION;
if (!installed) {
  const major = Number(process.versions.node.split(".")[0]);
  if (major < 24) throw new Error(`OpenClaw ${OPENCLAW_VERSION} needs Node >= 24.16; run this through npm run (node@24 devDependency)`);
  mkdirSync(root, { recursive: true });
  if (!existsSync(join(root, "package.json"))) writeFileSync(join(root, "package.json"), '{ "name": "openclaw-cache", "private": true }\n');
  process.stderr.write(`installing openclaw@${OPENCLAW_VERSION} into ${root} (once; ~650 MB)\n`);
  const install = () => execFileSync("npm", ["install", `openclaw@${OPENCLAW_VERSION}`, "--no-fund", "--no-audit"], { cwd: root, stdio: ["ignore", 2, 2] });
  try {
    install();
  } catch {
    process.stderr.write("npm install failed; trying once more\n");
    install();
  }
}
process.stdout.write(`${join(root, "node_modules", "openclaw", "openclaw.mjs")}\n`);
