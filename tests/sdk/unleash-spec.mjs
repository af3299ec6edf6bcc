// The Unleash client specification's flags, served by Switchyard: for each file, replace the
// daemon's flags with the file's state (imported through the flag API), then return its cases.
// Shared by the Node driver; tests/sdk/unleash_client_python.py does the same in Python.
import { readFileSync } from 'node:fs';

const api = process.env.SWITCHYARD_API;
const admin = process.env.SWITCHYARD_ADMIN_TOKEN;
export const specDir = process.env.SWITCHYARD_UNLEASH_SPEC;

async function call(method, path, body) {
  const response = await fetch(`${api}${path}`, {
    method,
    headers: { Authorization: `Bearer ${admin}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

/// Deletes every flag (a flag others depend on goes once they are gone), then imports `state`.
export async function replaceFlags(state) {
  let keys = (await call('GET', '/api/v1/flags')).body.flags.map((f) => f.key);
  while (keys.length > 0) {
    const left = [];
    for (const key of keys) {
      const r = await call('DELETE', `/api/v1/flags/${encodeURIComponent(key)}`, { reason: 'sdk tests' });
      if (r.status !== 200) left.push(key);
    }
    if (left.length === keys.length) throw new Error(`cannot delete flags ${left.join(', ')}`);
    keys = left;
  }
  const r = await call('PUT', '/api/v1/flags', { format: 'unleash', content: JSON.stringify(state), reason: 'sdk tests' });
  if (r.status !== 200) throw new Error(`import failed: ${JSON.stringify(r.body)}`);
}

/// The specification's files and their cases.
export function specFiles() {
  const index = JSON.parse(readFileSync(`${specDir}/index.json`, 'utf8'));
  return index.map((file) => ({ file, ...JSON.parse(readFileSync(`${specDir}/${file}`, 'utf8')) }));
}

/// Whether an SDK variant matches the specification's expected one.
export function sameVariant(got, expected) {
  return got.name === expected.name
    && got.enabled === expected.enabled
    && (expected.feature_enabled === undefined || (got.feature_enabled ?? got.featureEnabled) === expected.feature_enabled)
    && JSON.stringify(got.payload ?? null) === JSON.stringify(expected.payload ?? null);
}

/// The Unleash SDK instances the daemon has heard from.
export async function clients() {
  return (await call('GET', '/api/v1/flags/clients')).body.instances;
}
