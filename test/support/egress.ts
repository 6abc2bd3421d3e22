import type { Config } from "../../src/config/schema.js";
import { createEgress, type Egress } from "../../src/egress/engine.js";
import { createLogger } from "../../src/log.js";
import { createRedisConnector, openEgressConnections } from "../../src/redis.js";
import { createSecretResolver } from "../../src/secrets/resolve.js";

/** The egress as deps.ts builds it, for a parsed config (any Redis engine): its own connections, no secret providers, a silent log. */
export async function openTestEgress(config: Config): Promise<Egress> {
  const secrets = createSecretResolver({ providers: {} });
  return createEgress({
    config,
    secrets,
    log: createLogger({ level: "silent" }),
    connections: await openEgressConnections((await createRedisConnector(config.redis, secrets))!),
  });
}
