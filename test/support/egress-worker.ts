// A delivery worker in its own process, for the SIGKILL test: reads a config (JSON) from argv,
// starts the egress worker, prints "ready", and runs until killed.
import { configFrom } from "../../src/config/load.js";
import { openTestEgress } from "./egress.js";

const config = configFrom(JSON.parse(process.argv[2]!));
const egress = await openTestEgress(config);
await egress.startWorker();
process.stdout.write("ready\n");
