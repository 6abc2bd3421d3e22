import type { HttpBindings } from "@hono/node-server";
import type { Route } from "./config/schema.js";

/** Hono environment: Node bindings (absent under `app.request()` in tests) and per-request variables. */
export type AppEnv = {
  Bindings: Partial<HttpBindings>;
  Variables: {
    route: Route;
    /** The `code` of the error envelope, for metrics and logs. */
    errorCode: string;
  };
};
