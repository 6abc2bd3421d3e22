#!/usr/bin/env node
// Runs the compiled CLI (dist/, from `npm run build`; what the image and an installed package use).
// In a source checkout without dist/, it runs the TypeScript source through tsx, a devDependency.
import { existsSync } from "node:fs";

const dist = new URL("../dist/cli/main.js", import.meta.url);
if (existsSync(dist)) {
  await import(dist.href);
} else {
  let register;
  try {
    ({ register } = await import("tsx/esm/api"));
  } catch {
    process.stderr.write("openclaw-webhooks: dist/ is missing; run `npm run build` (or `npm install` for tsx to run the source)\n");
    process.exit(2);
  }
  register();
  await import(new URL("../src/cli/main.ts", import.meta.url).href);
}
