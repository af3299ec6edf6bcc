// The dashboard in Debian's Chromium, driven by Playwright (playwright-core, no browser
// download): signing in, a canary watched live from 10 % to 50 %, a stale click refused with the
// API's 409, promote pressed from the keyboard to Succeeded, a viewer without buttons whose
// forged POST gets 403, the judge's evidence while it waits, a flag switched off in production
// (and what an OFREP client gets then), the experiment page's winner and the audit filter.
// Every page is checked for unlabelled fields and for overflowing a phone's width.
//
// Started by scripts/ui-tests, which runs the daemon and passes tokens and addresses in the
// environment. With SWITCHYARD_UI_SCREENSHOTS=DIR it also saves a screenshot of every page
// there (scripts/ui-screenshots, for docs/dashboard.md) and lets a broken release be rolled back
// by the judge. With SWITCHYARD_UI_BENCH=N it times N weight changes from the API's answer to
// the page showing them (bench/dashboard/live-weight.sh).
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const env = process.env;
const API = env.SWITCHYARD_API;
const TOKENS = {
  admin: env.SWITCHYARD_ADMIN_TOKEN,
  deployer: env.UI_DEPLOYER_TOKEN,
  viewer: env.UI_VIEWER_TOKEN,
  editor: env.UI_EDITOR_TOKEN,
  sdk: env.UI_SDK_TOKEN,
};
const SHOP = env.UI_SHOP_URL;
const CHECKOUT = env.UI_CHECKOUT_URL;
const SHOTS = env.SWITCHYARD_UI_SCREENSHOTS || '';
const BENCH = Number(env.SWITCHYARD_UI_BENCH || 0);
// A bound on every wait for a condition: generous, so that a loaded machine only waits longer.
const PATIENCE = Number(env.UI_TEST_PATIENCE_MS || 120_000);

let passed = 0;
function step(name) {
  passed += 1;
  console.log(`ok ${passed} - ${name}`);
}

async function api(method, path, body, token = TOKENS.admin) {
  const response = await fetch(`${API}${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let json = null;
  try { json = JSON.parse(text); } catch (_) { /* not JSON */ }
  return { status: response.status, json, text };
}

async function must(method, path, body, token) {
  const answer = await api(method, path, body, token);
  assert.ok(answer.status < 300, `${method} ${path}: ${answer.status} ${answer.text}`);
  return answer.json;
}

async function rollout(app) {
  return must('GET', `/api/v1/apps/${app}/rollout`);
}

/// Waits until `check()` is truthy (polling the API, not the page).
async function until(what, check) {
  const deadline = Date.now() + PATIENCE;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// Requests to an app, `count` of them (with user ids, so they spread over the split).
async function traffic(base, count, from = 0) {
  for (let i = 0; i < count; i += 10) {
    await Promise.all(Array.from({ length: Math.min(10, count - i) }, (_, j) =>
      fetch(`${base}/`, { headers: { 'x-user-id': `u${from + i + j}` } }).then((r) => r.arrayBuffer()).catch(() => null)));
  }
}

// A steady load in the background (for charts worth a screenshot).
function load(base, rps) {
  let n = 0;
  const timer = setInterval(() => { traffic(base, Math.ceil(rps / 10), (n += 10)); }, 100);
  return () => clearInterval(timer);
}

const browser = await chromium.launch({
  executablePath: env.SWITCHYARD_CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const problems = [];

async function signedIn(token, viewport = { width: 1280, height: 900 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.on('pageerror', (e) => problems.push(`page error: ${e}`));
  // Answers the tests provoke (403, 415, 401 after signing out) are logged as failed loads.
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) problems.push(`console: ${m.text()}`);
  });
  await page.goto(`${API}/ui/`);
  await page.waitForURL(/\/ui\/login\?next=/);
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${API}/ui/`);
  return { context, page };
}

// Every field has a label, and the page fits its viewport's width (tables scroll inside).
async function checkPage(page, name) {
  const unlabelled = await page.$$eval('input, select, textarea', (fields) => fields
    .filter((f) => f.type !== 'hidden' && f.labels.length === 0 && !f.getAttribute('aria-label'))
    .map((f) => f.id || f.name || f.outerHTML.slice(0, 60)));
  assert.deepEqual(unlabelled, [], `${name}: fields without a label`);
  const [scroll, width] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
  assert.ok(scroll <= width, `${name}: ${scroll} px wide in a ${width} px window`);
}

async function shot(page, file, fullPage = true) {
  if (!SHOTS) return;
  await page.screenshot({ path: `${SHOTS}/${file}`, fullPage });
  console.log(`  screenshot ${SHOTS}/${file}`);
}

try {
  // --- Signing in: the cookie is HttpOnly and SameSite=Strict; the apps page lists both apps.
  const login = await browser.newPage({ viewport: { width: 1280, height: 700 } });
  await login.goto(`${API}/ui/apps/shop`);
  await login.waitForURL(/\/ui\/login\?next=%2Fui%2Fapps%2Fshop/);
  await checkPage(login, 'sign-in');
  await shot(login, 'sign-in.png');
  await login.getByLabel('API token').fill('sy_000000000000_nope');
  await login.getByRole('button', { name: 'Sign in' }).click();
  await login.getByRole('alert').filter({ hasText: 'not one of this daemon' }).waitFor();
  await login.close();

  const dana = await signedIn(TOKENS.deployer);
  const cookies = await dana.context.cookies();
  const session = cookies.find((c) => c.name === 'switchyard_session');
  assert.ok(session, 'a session cookie');
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, 'Strict');
  assert.ok(!session.value.includes(TOKENS.deployer), 'the cookie is not the token');
  const apps = dana.page;
  await apps.getByRole('row', { name: /shop/ }).waitFor();
  await apps.getByRole('row', { name: /search/ }).waitFor();
  step('signing in sets an HttpOnly, SameSite=Strict session and shows every app');

  await apps.getByLabel('Environment').selectOption('staging');
  await apps.getByRole('button', { name: 'Filter' }).click();
  await apps.waitForURL(/environment=staging/);
  assert.equal(await apps.getByRole('row', { name: /shop/ }).count(), 0);
  await apps.getByRole('row', { name: /search/ }).waitFor();
  await checkPage(apps, 'apps');
  step('the apps page filters by environment');

  // --- A canary watched live: 10 % to 50 % without a reload.
  const stopLoad = load(SHOP, SHOTS ? 60 : 20);
  await must('POST', '/api/v1/apps/shop/deploy', { version: 'v2' });
  await until('shop at 10 %', async () => (await rollout('shop')).weight === 10);
  const live = apps;
  await live.goto(`${API}/ui/apps/shop`);
  await live.locator('[data-weight="10"]').waitFor();
  await live.locator('[data-live][data-connected="true"]').waitFor();
  await live.evaluate(() => { window.__loadedOnce = true; });
  const at10 = await rollout('shop');
  await must('POST', '/api/v1/apps/shop/rollout/promote', { expect: { rollout: at10.id, step: at10.step } });
  await live.locator('[data-weight="50"]').waitFor({ timeout: PATIENCE });
  assert.equal(await live.evaluate(() => window.__loadedOnce), true, 'the page was not reloaded');
  await live.locator('#s-steps li[aria-current="step"]', { hasText: 'pause' }).waitFor();
  await checkPage(live, 'rollout');
  step('the rollout page follows the canary from 10 % to 50 % without reloading');

  // --- A viewer: no buttons, and a POST forged from its page gets 403.
  const viewer = await signedIn(TOKENS.viewer);
  await viewer.page.goto(`${API}/ui/apps/shop`);
  await viewer.page.locator('[data-weight="50"]').waitFor();
  assert.equal(await viewer.page.locator('button[data-command]').count(), 0);
  assert.equal(await viewer.page.getByLabel('Reason').count(), 0);
  await viewer.page.getByText('Your role may not change rollouts.').waitFor();
  const forged = await viewer.page.evaluate(async () => {
    const post = (type, body) => fetch('/api/v1/apps/shop/rollout/promote', {
      method: 'POST', credentials: 'same-origin', headers: { 'content-type': type }, body,
    }).then(async (r) => [r.status, (await r.json()).error.code]);
    return [await post('application/json', '{}'), await post('application/x-www-form-urlencoded', 'full=true')];
  });
  assert.deepEqual(forged, [[403, 'forbidden'], [415, 'unsupported_media_type']]);
  assert.equal((await rollout('shop')).weight, 50, 'nothing changed');
  step('a viewer sees no buttons; its forged POST gets 403 (and a form post 415)');

  // --- A stale page: its promote is refused with the 409, explained on the page.
  const stale = await dana.context.newPage();
  await stale.route('**/live', (route) => route.abort());
  await stale.goto(`${API}/ui/apps/shop`);
  await stale.locator('[data-weight="50"]').waitFor();
  const shown = Number(await stale.locator('[data-rollout]').getAttribute('data-step'));
  // Someone else promotes while this page does not follow: what it shows is now stale.
  const at50 = await rollout('shop');
  assert.equal(at50.step, shown);
  await must('POST', '/api/v1/apps/shop/rollout/promote', { expect: { rollout: at50.id, step: shown } });
  await until('shop to succeed', async () => (await rollout('shop')).phase === 'Succeeded');
  await stale.getByRole('button', { name: 'Promote' }).click();
  await stale.getByRole('status').filter({ hasText: 'moved on since this page showed it' }).waitFor();
  await stale.close();
  await live.locator('#s-summary .badge', { hasText: 'Succeeded' }).waitFor({ timeout: PATIENCE });
  step('a click on a stale page gets the 409, explained on the page');

  // --- Promote from the page, with the keyboard, to Succeeded.
  await must('POST', '/api/v1/apps/shop/deploy', { version: 'v3' });
  await live.goto(`${API}/ui/apps/shop`);
  await live.locator('[data-weight="10"]').waitFor();
  // A live redraw of the section the focused control is in leaves the focus on its new copy.
  const refocused = await live.evaluate(() => {
    const section = document.getElementById('s-actions');
    section.querySelector('[data-command="promote"]').focus();
    replaceSection(section, section.innerHTML);
    const focused = document.activeElement;
    return [section.contains(focused), focused.dataset.command];
  });
  assert.deepEqual(refocused, [true, 'promote']);
  for (const weight of [10, 50]) {
    await live.locator(`[data-weight="${weight}"]`).waitFor({ timeout: PATIENCE });
    // Focus and key in one action. The live stream may still redraw the section between the
    // two; the page then gives the focus to the new copy of the button.
    await live.getByRole('button', { name: 'Promote' }).press('Enter');
    await live.getByRole('status').filter({ hasText: 'Promote: done' }).waitFor();
  }
  await live.locator('#s-summary .badge', { hasText: 'Succeeded' }).waitFor({ timeout: PATIENCE });
  await live.locator('#s-timeline li', { hasText: 'deployer-dana' }).first().waitFor();
  step('promote pressed on the page (keyboard) ends in Succeeded, with the actor in the timeline; a live redraw keeps the focus');
  await shot(live, 'rollout-succeeded.png');

  if (BENCH > 0) {
    // Weight changes timed from the API's answer to the page showing the weight.
    const steps = Array.from({ length: 9 }, (_, i) => `        - setWeight: ${10 * (i + 1)}\n        - pause: {}`).join('\n');
    const app = `apiVersion: switchyard.dev/v1alpha1
kind: App
metadata: {name: bench}
spec:
  listen: 127.0.0.1:0
  runtime:
    process:
      command: ["switchyard", "demo-app", "--port", "{port}", "--version", "{version}"]
      instances: 1
  healthCheck: {path: /health, interval: 1s, timeout: 1s}
  strategy:
    canary:
      steps:
${steps}
`;
    await must('POST', '/api/v1/apply', { files: [{ name: 'bench.yaml', content: app }] });
    await must('POST', '/api/v1/apps/bench/deploy', { version: 'b0' });
    const timings = [];
    for (let round = 1; timings.length < BENCH; round += 1) {
      await must('POST', '/api/v1/apps/bench/deploy', { version: `b${round}` });
      await live.goto(`${API}/ui/apps/bench`);
      await live.locator('[data-live][data-connected="true"]').waitFor();
      for (;;) {
        const r = await rollout('bench');
        if (!r.active || timings.length >= BENCH) break;
        await live.locator(`[data-weight="${r.weight}"]`).waitFor({ timeout: PATIENCE });
        const started = performance.now();
        const answer = await must('POST', '/api/v1/apps/bench/rollout/promote', { expect: { rollout: r.id, step: r.step } });
        if (!answer.active || answer.weight === r.weight) continue;
        await live.locator(`[data-weight="${answer.weight}"]`).waitFor({ timeout: PATIENCE });
        timings.push(performance.now() - started);
      }
      const r = await rollout('bench');
      if (r.active) await must('POST', '/api/v1/apps/bench/rollout/abort', {});
    }
    timings.sort((a, b) => a - b);
    const at = (q) => timings[Math.min(timings.length - 1, Math.floor(q * timings.length))];
    console.log(`BENCH live weight: n=${timings.length} p50=${at(0.5).toFixed(0)} ms p90=${at(0.9).toFixed(0)} ms max=${timings[timings.length - 1].toFixed(0)} ms`);
  }

  // --- The judge's evidence while it waits: not enough evidence yet, about N more requests.
  await must('POST', '/api/v1/apps/checkout/deploy', { version: 'v2' });
  await until('checkout analysing', async () => (await rollout('checkout')).phase === 'Analyzing');
  await traffic(CHECKOUT, 120);
  await live.goto(`${API}/ui/apps/checkout`);
  const pending = live.locator('#s-judge .pending');
  await pending.waitFor({ timeout: PATIENCE });
  assert.match(await pending.innerText(), /Not enough evidence yet: about [\d,\s]+ more canary requests/);
  await live.locator('#s-judge svg[aria-label*="estimate, interval and boundary"]').waitFor();
  await live.locator('#s-measurements tbody tr').first().waitFor();
  step('the judge\'s evidence is drawn, with how many more requests it needs');
  await live.getByLabel('Reason').fill('checked by hand instead');
  await live.getByRole('button', { name: 'Abort' }).click();
  await live.locator('#s-summary .badge', { hasText: 'Aborted' }).waitFor({ timeout: PATIENCE });
  await live.locator('#s-timeline li', { hasText: 'checked by hand instead' }).waitFor();
  step('abort from the page records its reason');

  // --- An approval step: refused without the reason it requires, then approved with one.
  await must('POST', '/api/v1/apps/search/deploy', { version: 'v2' });
  await until('search awaiting approval', async () => (await rollout('search')).phase === 'AwaitingApproval');
  await live.goto(`${API}/ui/apps/search`);
  await live.getByRole('button', { name: 'Approve' }).click();
  await live.getByRole('status').filter({ hasText: 'reason' }).waitFor();
  assert.equal((await rollout('search')).phase, 'AwaitingApproval');
  await live.getByLabel('Reason').fill('looked at the dashboards');
  await live.getByRole('button', { name: 'Approve' }).click();
  await live.locator('#s-summary .badge', { hasText: 'Succeeded' }).waitFor({ timeout: PATIENCE });
  await live.locator('#s-timeline li', { hasText: 'approved by deployer-dana: looked at the dashboards' }).waitFor();
  step('approve needs the reason its step requires and records it');
  // --- Undo: back to the release the last rollout replaced.
  await live.getByRole('button', { name: 'Undo' }).click();
  await live.locator('#s-summary .headline', { hasText: 'v1 replacing v2' }).waitFor({ timeout: PATIENCE });
  await live.locator('#s-summary .badge', { hasText: 'Succeeded' }).waitFor({ timeout: PATIENCE });
  const back = await rollout('search');
  assert.equal(back.version, 'v1');
  step('undo from the page goes back to the release before, at once');

  // --- A broken release the judge rolls back: the incident and its report.
  const stopCheckout = load(CHECKOUT, 40);
  await must('POST', '/api/v1/apps/checkout/deploy', { version: 'v3', env: { DEMO_ERROR_EVERY: '4' } });
  await live.goto(`${API}/ui/apps/checkout`);
  await live.locator('#s-summary .badge', { hasText: 'RolledBack' }).waitFor({ timeout: PATIENCE });
  stopCheckout();
  await shot(live, 'rollout-rolled-back.png');
  await live.getByRole('link', { name: 'The incident report' }).click();
  await live.getByRole('heading', { name: 'checkout v3 rolled back' }).waitFor();
  await live.getByRole('heading', { name: 'What to look at next' }).waitFor();
  await live.locator('svg[aria-label*="errors-vs-stable: estimate, interval and boundary"]').waitFor();
  const exposed = await live.getByRole('row', { name: /v3 \(canary\)/ }).innerText();
  assert.match(exposed, /v3 \(canary\)\s+\d+\s+\d+\s+[\d.]+ %/);
  await checkPage(live, 'incident');
  await shot(live, 'incident.png');
  await live.goto(`${API}/ui/incidents`);
  await live.getByRole('row', { name: /checkout/ }).waitFor();
  await shot(live, 'incidents.png');
  step('a release the judge rolled back has an incident report with its evidence and exposure');

  if (SHOTS) {
    // A rollout in progress, with a few samples of traffic in its charts.
    await must('POST', '/api/v1/apps/shop/deploy', { version: 'v4' });
    await live.goto(`${API}/ui/apps/shop`);
    await live.locator('[data-weight="10"]').waitFor();
    const r = await rollout('shop');
    await must('POST', '/api/v1/apps/shop/rollout/promote', { expect: { rollout: r.id, step: r.step } });
    await new Promise((resolve) => setTimeout(resolve, 12_000));
    await shot(live, 'rollout-live.png');
    const small = await dana.context.newPage();
    await small.setViewportSize({ width: 390, height: 844 });
    await small.goto(`${API}/ui/apps/shop`);
    await small.locator('[data-weight="50"]').waitFor();
    await checkPage(small, 'rollout on a phone');
    await shot(small, 'rollout-phone.png');
    await small.close();
    await apps.goto(`${API}/ui/`);
    await shot(apps, 'apps.png');
  }
  stopLoad();

  // --- Flags: switched off in production from the page; an OFREP client gets it at once.
  const ofrep = async () => {
    const response = await fetch(`${API}/ofrep/v1/evaluate/flags/new-checkout`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${TOKENS.sdk}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ context: { targetingKey: 'user-1' } }),
    });
    return response.json();
  };
  assert.equal((await ofrep()).value, true);
  const editor = await signedIn(TOKENS.editor);
  const flags = editor.page;
  await flags.goto(`${API}/ui/flags?environment=production`);
  const toggle = flags.getByRole('switch', { name: 'new-checkout in production' });
  assert.equal(await toggle.getAttribute('aria-checked'), 'true');
  await checkPage(flags, 'flags');
  await shot(flags, 'flags.png');
  await toggle.click();
  await flags.getByRole('switch', { name: 'new-checkout in production', checked: false }).waitFor();
  const after = await ofrep();
  assert.equal(after.value, false);
  assert.equal(after.reason, 'DISABLED');
  step('switching a flag off in production changes what an OFREP client gets');
  await flags.getByLabel('Rollout percentage of banner-text in production').fill('25');
  await flags.getByLabel('Rollout percentage of banner-text in production').press('Enter');
  await flags.getByRole('row', { name: /banner-text/ }).getByText('25% of them').waitFor();
  await flags.goto(`${API}/ui/flags/new-checkout`);
  await flags.getByText('environments.production.enabled').waitFor();
  await flags.locator('.timeline li', { hasText: 'editor-erin' }).first().waitFor();
  await checkPage(flags, 'flag');
  await shot(flags, 'flag.png');
  step('a flag\'s audit trail shows who changed what');
  // The viewer may read flags but gets no switch.
  await viewer.page.goto(`${API}/ui/flags?environment=production`);
  await viewer.page.getByRole('row', { name: /new-checkout/ }).waitFor();
  assert.equal(await viewer.page.getByRole('switch').count(), 0);
  step('a viewer sees flags without switches');

  // --- The experiment: the winner on the page.
  const events = [];
  for (let i = 0; i < 400; i += 1) {
    const variant = i % 2 === 0 ? 'control' : 'urgent';
    events.push({ id: `x-${i}`, experiment: 'checkout-copy', unit: `user-${i}`, event: '$exposure', variant });
    const buys = variant === 'control' ? i % 10 === 0 : i % 10 < 5;
    if (buys) events.push({ id: `p-${i}`, experiment: 'checkout-copy', unit: `user-${i}`, event: 'purchase' });
  }
  for (let i = 0; i < events.length; i += 1000) {
    await must('POST', '/api/v1/events', { events: events.slice(i, i + 1000) });
  }
  await apps.goto(`${API}/ui/experiments`);
  await checkPage(apps, 'experiments');
  await shot(apps, 'experiments.png');
  await apps.getByRole('link', { name: 'checkout-copy' }).click();
  await apps.locator('.rec.ship', { hasText: 'SHIP `urgent`' }).waitFor();
  await apps.locator('svg[aria-label*="purchased"]').first().waitFor();
  assert.equal(await apps.getByRole('button', { name: 'Stop the experiment' }).count(), 1, 'a deployer may stop it');
  await checkPage(apps, 'experiment');
  await shot(apps, 'experiment.png');
  step('the experiment page shows the winning variant');

  // --- Audit: the event log filtered by principal and kind.
  await apps.goto(`${API}/ui/audit`);
  await apps.getByLabel('Principal').fill('deployer-dana');
  await apps.getByLabel('Kind').selectOption('aborted');
  await apps.getByRole('button', { name: 'Filter' }).click();
  await apps.waitForURL(/actor=deployer-dana/);
  const rows = apps.locator('table.audit tbody tr');
  assert.equal(await rows.count(), 1);
  assert.match(await rows.first().innerText(), /aborted[\s\S]*checkout[\s\S]*deployer-dana/);
  await checkPage(apps, 'audit');
  await apps.goto(`${API}/ui/audit`);
  await shot(apps, 'audit.png', false);
  step('the audit page filters the event log by principal and kind');

  // --- Every page fits a phone's width, its fields labelled.
  const phone = await dana.context.newPage();
  await phone.setViewportSize({ width: 390, height: 844 });
  for (const path of ['/ui/', '/ui/apps/checkout', '/ui/flags?environment=production', '/ui/flags/new-checkout',
    '/ui/experiments', '/ui/experiments/checkout-copy', '/ui/incidents', '/ui/audit']) {
    await phone.goto(`${API}${path}`);
    await checkPage(phone, `${path} on a phone`);
  }
  await phone.close();
  step('every page fits a phone\'s width');

  // --- Signing out ends the session.
  await apps.getByRole('button', { name: 'Sign out' }).click();
  await apps.waitForURL(/\/ui\/login/);
  const afterSignOut = await apps.evaluate(() => fetch('/api/v1/apps').then((r) => r.status));
  assert.equal(afterSignOut, 401);
  step('signing out ends the session');
} finally {
  await browser.close();
}
assert.deepEqual(problems, [], 'no script errors on any page');
console.log(`dashboard: ${passed} checks passed`);
