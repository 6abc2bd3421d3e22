// A delivery worker in its own process, for the SIGKILL test: reads a config (JSON) from argv,
// starts the egress worker, prints "ready", and runs until killed.
import { configFrom } from "../../src/config/load.js";
import { createEgress } from "../../src/egress/engine.js";
import { createLogger } from "../../src/log.js";
import { createSecretResolver } from "../../src/secrets/resolve.js";
import { openEgressConnections } from "../../src/redis.js";

const config = configFrom(JSON.parse(process.argv[2]!));
const egress = await createEgress({
  config,
  secrets: createSecretResolver({ providers: {} }),
  log: createLogger({ level: "silent" }),
  connections: await openEgressConnections(config.redis.url!),
});
await egress.startWorker();
process.stdout.write("ready\n");
