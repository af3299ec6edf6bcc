// Unleash's Node server SDK (unleash-client), unmodified, against Switchyard's client API with an
// SDK key: every case of the Unleash client specification, each file's flags imported into the
// daemon and served back as Unleash features; then the SDK's registration and usage counts.
import { once } from 'node:events';
import { Unleash } from 'unleash-client';
import { clients, replaceFlags, sameVariant, specFiles } from './unleash-spec.mjs';
import { contexts, check, expectations } from './unleash-expectations.mjs';

const appName = 'switchyard-sdk-tests-node';

function start(instanceId) {
  const client = new Unleash({
    url: `${process.env.SWITCHYARD_API}/api/`,
    appName,
    instanceId,
    customHeaders: { Authorization: process.env.SWITCHYARD_SDK_KEY },
    refreshInterval: 60_000,
    metricsInterval: 60_000,
    skipInstanceCountWarning: true,
  });
  return client;
}

// Waits for the SDK's first fetch; a daemon that never answers fails the test instead of
// hanging it.
function synchronized(client) {
  return once(client, 'synchronized', { signal: AbortSignal.timeout(60_000) });
}

const problems = [];

// First tests/sdk/flags.yaml (native flags): the SDK answers what the frontend API answers,
// except for the flags the client API leaves out (flagd targeting), which it names.
const features = await (await fetch(`${process.env.SWITCHYARD_API}/api/client/features`, {
  headers: { Authorization: process.env.SWITCHYARD_SDK_KEY },
})).json();
const leftOut = features.leftOut.map((l) => l.flag);
if (JSON.stringify(leftOut) !== '["banner"]') problems.push(`leftOut = ${JSON.stringify(features.leftOut)}, expected banner only`);
{
  const client = start('native-flags');
  client.on('error', (e) => problems.push(`native flags: client error ${e.message}`));
  await synchronized(client);
  for (const name of Object.keys(contexts)) {
    const context = contexts[name];
    const view = {
      isEnabled: (flag) => (leftOut.includes(flag) ? expectedEnabled(name, flag) : client.isEnabled(flag, context)),
      getVariant: (flag) => {
        if (leftOut.includes(flag)) return expectedVariant(name, flag);
        const { featureEnabled, ...variant } = client.getVariant(flag, context);
        return variant;
      },
    };
    problems.push(...check('unleash-client (node)', view, name));
  }
  client.destroy();
}

// A left-out flag is not served to this SDK at all: it is checked by the leftOut list above.
function expectedEnabled(name, flag) {
  return expectations[name].enabled[flag];
}

function expectedVariant(name, flag) {
  return expectations[name].variants[flag];
}

let cases = 0;
let lastClient;
for (const spec of specFiles()) {
  await replaceFlags(spec.state);
  const client = start(`spec-${spec.file}`);
  client.on('error', (e) => problems.push(`${spec.file}: client error ${e.message}`));
  await synchronized(client);
  for (const t of spec.tests ?? []) {
    cases += 1;
    const got = client.isEnabled(t.toggleName, t.context);
    if (got !== t.expectedResult) {
      problems.push(`${spec.file}: ${t.description}: isEnabled = ${got}, expected ${t.expectedResult}`);
    }
  }
  for (const t of spec.variantTests ?? []) {
    cases += 1;
    const got = client.getVariant(t.toggleName, t.context);
    if (!sameVariant(got, t.expectedResult)) {
      problems.push(`${spec.file}: ${t.description}: getVariant = ${JSON.stringify(got)}, expected ${JSON.stringify(t.expectedResult)}`);
    }
  }
  if (lastClient) lastClient.destroy();
  lastClient = client;
}
// The last client's counts reach the daemon when it flushes.
await lastClient.destroyWithFlush();
const seen = (await clients()).filter((c) => c.appName === appName);
const last = seen.find((c) => c.instanceId.startsWith('spec-22'));
if (!last || !last.registered || !last.sdkVersion?.startsWith('unleash-node-sdk')) {
  problems.push(`registration not recorded: ${JSON.stringify(seen)}`);
} else if (Object.values(last.toggles).reduce((n, t) => n + t.yes + t.no, 0) === 0) {
  problems.push(`usage counts not recorded: ${JSON.stringify(last)}`);
}
console.log(`node unleash-client: ${cases} specification cases, ${problems.length} problems`);
if (problems.length > 0) {
  console.error(problems.join('\n'));
  process.exit(1);
}
process.exit(0);
