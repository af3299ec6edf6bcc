// The OFREP web provider and unleash-proxy-client in headless Chromium, on pages from another
// origin than the daemon (CORS preflights, ETag exposure, the eventStreams SSE through EventSource
// with the SDK key as access_token; Unleash's own headers on the frontend API). Drives
// web/index.html and web/unleash.html with puppeteer-core and Debian's chromium-headless-shell.
import puppeteer from 'puppeteer-core';

const [page_url, browser_path] = process.argv.slice(2);
const api = process.env.SWITCHYARD_API;
const admin = process.env.SWITCHYARD_ADMIN_TOKEN;
const PATIENCE = Number(process.env.SDK_TEST_PATIENCE_MS || 120_000);

const browser = await puppeteer.launch({
  executablePath: browser_path,
  headless: 'shell',
  args: ['--no-sandbox', '--disable-gpu'],
});
let state;
const console_lines = [];
try {
  const page = await browser.newPage();
  page.on('console', (m) => console_lines.push(m.text()));
  page.on('pageerror', (e) => console_lines.push(String(e)));
  const url = `${page_url}?api=${encodeURIComponent(api)}&key=${encodeURIComponent(process.env.SWITCHYARD_SDK_KEY)}`;
  await page.goto(url);
  await page.waitForFunction('window.__sdk && (window.__sdk.ready || window.__sdk.done)', { timeout: PATIENCE });
  const response = await fetch(`${api}/api/v1/flags/layout/environments/production/disable`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${admin}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ reason: 'browser test' }),
  });
  if (!response.ok) throw new Error(`disabling layout: ${response.status}`);
  await page.waitForFunction('window.__sdk.done', { timeout: PATIENCE });
  state = await page.evaluate(() => window.__sdk);
  if (state.problems.length > 0) state.problems.push(...console_lines.map((l) => `console: ${l}`));
  await fetch(`${api}/api/v1/flags/layout/environments/production/enable`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${admin}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ reason: 'browser test' }),
  });

  // unleash-proxy-client on the same origin, against the Unleash frontend API.
  const unleash_page = await browser.newPage();
  unleash_page.on('console', (m) => console_lines.push(m.text()));
  unleash_page.on('pageerror', (e) => console_lines.push(String(e)));
  await unleash_page.goto(url.replace('/index.html', '/unleash.html'));
  await unleash_page.waitForFunction('window.__unleash && window.__unleash.done', { timeout: PATIENCE });
  const unleash = await unleash_page.evaluate(() => window.__unleash);
  console.log(`browser unleash-proxy-client: ${unleash.problems.length === 0 ? 'all checks pass' : `${unleash.problems.length} problems`}`);
  state.problems.push(...unleash.problems);
} catch (e) {
  console.error(`browser test: ${e}\n${console_lines.join('\n')}`);
  await browser.close();
  process.exit(1);
} finally {
  await browser.close();
}
console.log(`browser OFREP web provider: ${state.checked - state.problems.length}/${state.checked} checks pass`);
if (state.problems.length > 0 || !state.changed) {
  console.error(state.problems.join('\n') || 'the change never reached the page');
  process.exit(1);
}
