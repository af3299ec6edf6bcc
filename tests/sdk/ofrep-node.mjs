// The OFREP providers for Node, unmodified: the server provider (@openfeature/ofrep-provider,
// dynamic context, one request per evaluation) and the web provider (@openfeature/ofrep-web-provider,
// static context, bulk evaluation with ETag and the eventStreams SSE), pointed at a Switchyard
// daemon with an SDK key. Exits 1 listing every case that differs from expectations.json.
import { readFileSync } from 'node:fs';
import { EventSource } from 'eventsource';
import { OpenFeature as ServerFeature } from '@openfeature/server-sdk';
import { OFREPProvider } from '@openfeature/ofrep-provider';
import { OpenFeature as WebFeature, ProviderEvents } from '@openfeature/web-sdk';
import { OFREPWebProvider } from '@openfeature/ofrep-web-provider';
import { mismatches, resolve } from './check.mjs';

// Node 20 has no EventSource; the web provider uses the global one, as in a browser.
globalThis.EventSource = EventSource;

const api = process.env.SWITCHYARD_API;
const headers = [['Authorization', `Bearer ${process.env.SWITCHYARD_SDK_KEY}`]];
const expectations = JSON.parse(readFileSync(new URL('./expectations.json', import.meta.url)));
const problems = [];
let checked = 0;

// Server provider: every case, with its context per call.
await ServerFeature.setProviderAndWait(new OFREPProvider({ baseUrl: api, headers }));
const server = ServerFeature.getClient();
for (const c of expectations.cases) {
  const details = await resolve(server, c, expectations.contexts[c.context]);
  problems.push(...mismatches('server provider', c, details));
  checked += 1;
}

// Web provider: one static context at a time.
await WebFeature.setContext(expectations.contexts.staff);
await WebFeature.setProviderAndWait(new OFREPWebProvider({ baseUrl: api, headers, pollInterval: 0 }));
const web = WebFeature.getClient();
for (const name of Object.keys(expectations.contexts)) {
  await WebFeature.setContext(expectations.contexts[name]);
  for (const c of expectations.cases.filter((c) => c.context === name)) {
    problems.push(...mismatches('web provider (node)', c, resolve(web, c)));
    checked += 1;
  }
}

// A change reaches the web provider through the stream the bulk answer names.
await WebFeature.setContext(expectations.contexts.staff);
const changed = new Promise((resolve) => web.addHandler(ProviderEvents.ConfigurationChanged, resolve));
const response = await fetch(`${api}/api/v1/flags/layout/environments/production/disable`, {
  method: 'POST',
  headers: {
    Authorization: `Bearer ${process.env.SWITCHYARD_ADMIN_TOKEN}`,
    'Content-Type': 'application/json',
  },
  body: JSON.stringify({ reason: 'sdk test' }),
});
if (!response.ok) {
  problems.push(`disabling layout: ${response.status} ${await response.text()}`);
} else {
  await changed;
  const details = web.getStringDetails('layout', 'none');
  problems.push(...mismatches('web provider (node) after a change', {
    context: 'staff', flag: 'layout', type: 'string', value: 'classic', reason: 'DISABLED',
  }, details));
  checked += 1;
  await fetch(`${api}/api/v1/flags/layout/environments/production/enable`, {
    method: 'POST',
    headers: {
      Authorization: `Bearer ${process.env.SWITCHYARD_ADMIN_TOKEN}`,
      'Content-Type': 'application/json',
    },
    body: JSON.stringify({ reason: 'sdk test' }),
  });
}
await WebFeature.close();
await ServerFeature.close();

console.log(`node OFREP providers: ${checked - problems.length}/${checked} checks pass`);
if (problems.length > 0) {
  console.error(problems.join('\n'));
  process.exit(1);
}
process.exit(0);
