import type { HttpBindings } from "@hono/node-server";
import type { StageRoute } from "./http/stages.js";

/** Hono environment: Node bindings (absent under `app.request()` in tests) and per-request variables. */
export type AppEnv = {
  Bindings: Partial<HttpBindings>;
  Variables: {
    /** The TaskFlow route or inbound endpoint serving the request. */
    route: StageRoute;
    /** The `code` of the error envelope, for metrics and logs. */
    errorCode: string;
  };
};
