import { after, before } from "node:test";
import { startFakeGateway, type FakeGateway } from "./fake-gateway.js";
import { startRedis, type TestRedis } from "./redis.js";

/** A throwaway Redis and a fake Gateway for one test file, started before its tests and stopped after. */
export function useRedisAndGateway(gatewayToken: string): { readonly redis: TestRedis; readonly gw: FakeGateway } {
  const ctx = {} as { redis: TestRedis; gw: FakeGateway };
  before(async () => {
    ctx.redis = await startRedis();
    ctx.gw = await startFakeGateway({ token: gatewayToken });
  });
  after(async () => {
    await ctx.gw?.stop();
    await ctx.redis?.dispose();
  });
  return ctx;
}
