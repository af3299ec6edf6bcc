// What unleash-proxy-client must see through Switchyard's /api/frontend for tests/sdk/flags.yaml,
// per context. Shared by the Node test and the browser page.
export const contexts = {
  staff: { userId: 'u1', properties: { email: 'ann@example.com' } },
  visitor: { userId: 'u2', properties: { email: 'bob@other.org' } },
};

export const expectations = {
  staff: {
    enabled: { beta: true, layout: true, limit: true, ratio: true, theme: true, killed: false, banner: true, 'no-such-flag': false },
    variants: {
      beta: { name: 'disabled', enabled: false, feature_enabled: true },
      layout: { name: 'grid', enabled: true, feature_enabled: true, payload: { type: 'string', value: 'grid' } },
      limit: { name: 'low', enabled: true, feature_enabled: true, payload: { type: 'number', value: '10' } },
      theme: { name: 'dark', enabled: true, feature_enabled: true, payload: { type: 'json', value: '{"bg":"black","fg":"white"}' } },
      banner: { name: 'hello', enabled: true, feature_enabled: true, payload: { type: 'string', value: 'hello' } },
      killed: { name: 'disabled', enabled: false, feature_enabled: false },
    },
  },
  visitor: {
    enabled: { beta: false, layout: true, banner: false, killed: false },
    variants: {
      banner: { name: 'disabled', enabled: false, feature_enabled: false },
    },
  },
};

/// Every difference between what `client` answers and the expectations of `name`.
export function check(label, client, name) {
  const problems = [];
  const expected = expectations[name];
  for (const [flag, enabled] of Object.entries(expected.enabled)) {
    const got = client.isEnabled(flag);
    if (got !== enabled) problems.push(`${label} ${name}: isEnabled(${flag}) = ${got}, expected ${enabled}`);
  }
  for (const [flag, variant] of Object.entries(expected.variants)) {
    const got = client.getVariant(flag);
    if (JSON.stringify(sorted(got)) !== JSON.stringify(sorted(variant))) {
      problems.push(`${label} ${name}: getVariant(${flag}) = ${JSON.stringify(got)}, expected ${JSON.stringify(variant)}`);
    }
  }
  return problems;
}

function sorted(value) {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  return Object.fromEntries(Object.keys(value).sort().map((k) => [k, sorted(value[k])]));
}
