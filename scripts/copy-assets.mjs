// Copies the non-TypeScript files the service loads at run time (Lua scripts) next to compiled
// output. Usage: node scripts/copy-assets.mjs <outDir> [<srcPrefix>]
import { cpSync } from "node:fs";
import { join } from "node:path";
const [outDir, prefix = ""] = process.argv.slice(2);
cpSync("src/limits/lua", join(outDir, prefix, "limits/lua"), { recursive: true });
cpSync("src/egress/lua", join(outDir, prefix, "egress/lua"), { recursive: true });
cpSync("src/idempotency/lua", join(outDir, prefix, "idempotency/lua"), { recursive: true });
