import { serveMain } from "./serve.js";

serveMain(process.argv.slice(2)).catch((err) => {
  process.stderr.write(`openclaw-webhooks: fatal: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
