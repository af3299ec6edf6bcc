// unleash-proxy-client, unmodified, against Switchyard's Unleash frontend API with an SDK key.
import { UnleashClient } from 'unleash-proxy-client';
import { contexts, check } from './unleash-expectations.mjs';

const client = new UnleashClient({
  url: `${process.env.SWITCHYARD_API}/api/frontend`,
  clientKey: process.env.SWITCHYARD_SDK_KEY,
  appName: 'switchyard-sdk-tests',
  context: contexts.staff,
  refreshInterval: 0,
  // Counts are sent on request below, not on a timer.
  metricsInterval: 3600,
  metricsIntervalInitial: 3600,
});
const problems = [];
client.on('error', (e) => problems.push(`client error: ${JSON.stringify(e)}`));
await client.start();
problems.push(...check('unleash-proxy-client (node)', client, 'staff'));
await client.updateContext(contexts.visitor);
problems.push(...check('unleash-proxy-client (node)', client, 'visitor'));
// The usage counts reach the daemon's Unleash metrics endpoint and are read back.
await client.sendMetrics();
const response = await fetch(`${process.env.SWITCHYARD_API}/api/v1/flags/clients`, {
  headers: { Authorization: `Bearer ${process.env.SWITCHYARD_ADMIN_TOKEN}` },
});
const instance = (await response.json()).instances.find((i) => i.appName === 'switchyard-sdk-tests');
if (!instance || !(instance.toggles.beta?.yes >= 1 && instance.toggles.beta?.no >= 1)) {
  problems.push(`frontend usage counts not recorded: ${JSON.stringify(instance)}`);
}
client.stop();
console.log(`node unleash-proxy-client: ${problems.length === 0 ? 'all checks pass' : `${problems.length} problems`}`);
if (problems.length > 0) {
  console.error(problems.join('\n'));
  process.exit(1);
}
// The SDK's first metrics timer (metricsIntervalInitial) outlives stop().
process.exit(0);
