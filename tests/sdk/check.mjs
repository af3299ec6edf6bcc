// Shared by the Node and browser tests: compares resolution details with an expected case.
export function mismatches(label, expected, details) {
  const problems = [];
  const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
  if (!same(details.value, expected.value)) {
    problems.push(`value ${JSON.stringify(details.value)} != ${JSON.stringify(expected.value)}`);
  }
  for (const field of ['variant', 'reason', 'errorCode']) {
    if (field in expected && details[field] !== expected[field]) {
      problems.push(`${field} ${details[field]} != ${expected[field]}`);
    }
  }
  return problems.map((p) => `${label} ${expected.flag} (${expected.type}, ${expected.context}): ${p}`);
}

const methods = {
  boolean: 'getBooleanDetails',
  string: 'getStringDetails',
  number: 'getNumberDetails',
  object: 'getObjectDetails',
};

/// The typed call of the case: (client, case) → details; `context` only for server clients.
export function resolve(client, testCase, context) {
  const method = methods[testCase.type];
  return context === undefined
    ? client[method](testCase.flag, testCase.default)
    : client[method](testCase.flag, testCase.default, context);
}
