// Serve fauxqs (the SQS and S3 emulator) on 127.0.0.1 only.
//
// The fauxqs command line (version 1.9.2) listens on 0.0.0.0, so the local
// stack starts this script instead. The port comes from the first argument,
// then FAUXQS_PORT, then 4566.
//
//	node infra/local/fauxqs.mjs [port]
import { buildApp } from "fauxqs";

const host = "127.0.0.1";
const port = Number.parseInt(process.argv[2] ?? process.env.FAUXQS_PORT ?? "4566", 10);
if (!Number.isInteger(port) || port < 1 || port > 65535) {
  console.error(`fauxqs: invalid port ${JSON.stringify(process.argv[2] ?? process.env.FAUXQS_PORT)}: expected a number from 1 to 65535`);
  process.exit(2);
}

const app = buildApp({ logger: true, defaultRegion: "us-east-1" });

let stopping = false;
async function stop(signal) {
  if (stopping) {
    return;
  }
  stopping = true;
  app.log.info({ signal }, "fauxqs: stopping");
  try {
    await app.close();
    process.exit(0);
  } catch (err) {
    app.log.error({ err }, "fauxqs: stop failed");
    process.exit(1);
  }
}
process.on("SIGTERM", () => stop("SIGTERM"));
process.on("SIGINT", () => stop("SIGINT"));

try {
  await app.listen({ host, port });
} catch (err) {
  app.log.error({ err, host, port }, "fauxqs: listen failed");
  process.exit(1);
}
