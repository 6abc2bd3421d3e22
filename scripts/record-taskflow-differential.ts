/**
 * `npm run record:differential`: sends the differential sequences (test/support/differential.ts)
 * to the bundled webhooks plugin on the real OpenClaw Gateway and writes its answers, normalised,
 * with the requests that produced them, to test/fixtures/taskflow-differential.json. `npm test`
 * runs the same sequences against the embedded runtime and compares with this file, which is
 * never edited by hand: change a sequence, then record again. `RECORD_OUT=file` writes elsewhere.
 *
 * Each sequence is recorded twice, on two fresh routes, and the two recordings must agree: an
 * answer that depends on timing would make the npm test flaky, so it is refused here.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { isDeepStrictEqual } from "node:util";
import { openclawEntry, startRealGateway } from "../test/openclaw/real-gateway.js";
import {
  DIFF_SECRET,
  FIXTURE_PATH,
  firstDifference,
  routeOf,
  runSequence,
  SEQUENCE_NAMES,
  type DifferentialFixture,
  type Recorded,
} from "../test/support/differential.js";
import { post } from "../test/support/service.js";

const OUT = process.env.RECORD_OUT ?? FIXTURE_PATH;
const version = (JSON.parse(readFileSync(join(dirname(openclawEntry()), "package.json"), "utf8")) as { version: string }).version;
const session = (route: string) => `agent:main:hook:${route}`;
const ROUNDS = ["", "-again"];

// The second round's route keeps the first one's controllerId (the default is `webhooks/<routeId>`).
const routes = Object.fromEntries(
  SEQUENCE_NAMES.flatMap((name) =>
    ROUNDS.map((r) => [
      routeOf(name) + r,
      {
        path: `/plugins/webhooks/${routeOf(name)}${r}`,
        sessionKey: session(routeOf(name) + r),
        secret: DIFF_SECRET,
        controllerId: `webhooks/${routeOf(name)}`,
      },
    ]),
  ),
);
const gw = await startRealGateway({ routes });
try {
  const sequences: Record<string, Recorded> = {};
  for (const name of SEQUENCE_NAMES) {
    const rounds: Recorded[] = [];
    for (const r of ROUNDS) {
      const route = routeOf(name) + r;
      rounds.push(await runSequence(name, session(route), (body) => post(`${gw.http}/plugins/webhooks/${route}`, body, { secret: DIFF_SECRET })));
    }
    if (!isDeepStrictEqual(rounds[0], rounds[1])) {
      throw new Error(
        `${name}: two recordings differ, the sequence depends on timing:\n${firstDifference(rounds[0]!.answers, rounds[1]!.answers, rounds[0]!.requests)}`,
      );
    }
    sequences[name] = rounds[0]!;
    process.stderr.write(`recorded ${name}: ${rounds[0]!.answers.length} steps\n`);
  }
  const fixture: DifferentialFixture = {
    gateway: `openclaw ${version}`,
    plugin: "bundled webhooks plugin (plugins.entries.webhooks), one route and session per sequence",
    note: "Recorded by `npm run record:differential` (scripts/record-taskflow-differential.ts); never edited by hand.",
    sequences,
  };
  writeFileSync(OUT, `${JSON.stringify(fixture, null, 1)}\n`);
  process.stderr.write(`wrote ${OUT}\n`);
} finally {
  await gw.dispose();
}
