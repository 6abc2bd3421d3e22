import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { DIFF_SECRET, firstDifference, loadDifferentialFixture, routeOf, runSequence, SEQUENCE_NAMES } from "./support/differential.js";
import { post, startService, type TestService } from "./support/service.js";

/**
 * The embedded runtime (what `npm start` runs) against the bundled webhooks plugin's answers on
 * the real Gateway, recorded by `npm run record:differential`: the same sequences, the same
 * normalised statuses, codes and results. `npm run test:openclaw` runs them live as well.
 */
const fixture = loadDifferentialFixture();
const session = (route: string) => `agent:main:hook:${route}`;

describe(`embedded runtime against the recorded ${fixture.gateway} plugin answers`, () => {
  let svc: TestService;
  before(async () => {
    svc = await startService({
      routes: Object.fromEntries(
        SEQUENCE_NAMES.map((n) => [routeOf(n), { path: `/hooks/${routeOf(n)}`, sessionKey: session(routeOf(n)), secret: DIFF_SECRET }]),
      ),
    });
    assert.equal(svc.deps.config.gateway.mode, "embedded");
  });
  after(async () => {
    await svc?.close();
  });

  for (const name of SEQUENCE_NAMES) {
    test(`sequence ${name}`, async () => {
      const recorded = fixture.sequences[name];
      assert.ok(recorded, `no recording of ${name}: run npm run record:differential`);
      const route = routeOf(name);
      const got = await runSequence(name, session(route), (body) => post(`${svc.url}/hooks/${route}`, body, { secret: DIFF_SECRET }));
      assert.deepEqual(got.requests, recorded.requests, `the sequence ${name} changed since it was recorded: run npm run record:differential`);
      assert.deepEqual(got.answers, recorded.answers, firstDifference(recorded.answers, got.answers, got.requests));
    });
  }
});
