// unleash-proxy-client, unmodified, against Switchyard's Unleash frontend API with an SDK key.
import { UnleashClient } from 'unleash-proxy-client';
import { contexts, check } from './unleash-expectations.mjs';

const client = new UnleashClient({
  url: `${process.env.SWITCHYARD_API}/api/frontend`,
  clientKey: process.env.SWITCHYARD_SDK_KEY,
  appName: 'switchyard-sdk-tests',
  context: contexts.staff,
  refreshInterval: 0,
  disableMetrics: true,
});
const problems = [];
client.on('error', (e) => problems.push(`client error: ${JSON.stringify(e)}`));
await client.start();
problems.push(...check('unleash-proxy-client (node)', client, 'staff'));
await client.updateContext(contexts.visitor);
problems.push(...check('unleash-proxy-client (node)', client, 'visitor'));
client.stop();
console.log(`node unleash-proxy-client: ${problems.length === 0 ? 'all checks pass' : `${problems.length} problems`}`);
if (problems.length > 0) {
  console.error(problems.join('\n'));
  process.exit(1);
}
