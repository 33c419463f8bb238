// console-browser.mjs — drives the web console in Debian's Chromium with
// puppeteer-core, against a daemon tests/integration/test_console_browser.py
// started (with fake upstreams behind it).
//
//   node console-browser.mjs owner    clicks through every view as the
//                                     daemon's own user: live updates arrive
//   node console-browser.mjs stranger runs the browser as another user
//                                     (setpriv): the token prompt, then in
//
// Environment: ENS_CONSOLE_URL (the daemon's HTTP base URL), ENS_CHROMIUM,
// ENS_BROWSER_PROFILE (an empty folder for the browser's profile),
// ENS_TOKEN and ENS_STRANGER_UID (stranger), ENS_SCREENSHOT_DIR (optional:
// one PNG per view). Prints one line per step; exits non-zero on failure.

import fs from 'node:fs';
import path from 'node:path';
import WebSocket from 'ws';
import puppeteer from 'puppeteer-core';

const URL = process.env.ENS_CONSOLE_URL;
const CHROMIUM = process.env.ENS_CHROMIUM || '/usr/bin/chromium';
const PROFILE = process.env.ENS_BROWSER_PROFILE;
const SHOTS = process.env.ENS_SCREENSHOT_DIR || '';
const SCALE = Number(process.env.ENS_TEST_TIMEOUT_SCALE || '1');
const WAIT = 15000 * SCALE;
const mode = process.argv[2] || 'owner';

// The flags Debian's Chromium needs here: headless, as root, and nothing
// that reaches for the network on its own (this machine refuses it).
function chromiumFlags() {
  return ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--disable-dev-shm-usage', '--disable-default-apps', '--disable-extensions', '--hide-scrollbars',
    '--mute-audio', '--force-color-profile=srgb', '--window-size=1440,960', `--user-data-dir=${PROFILE}`];
}

async function launch(uid) {
  const options = { ignoreDefaultArgs: true, defaultViewport: { width: 1440, height: 960 }, timeout: 60000 * SCALE, pipe: false };
  if (uid) {
    // The browser runs as that user: its connections are that user's.
    return puppeteer.launch(Object.assign(options, {
      executablePath: '/usr/bin/setpriv',
      args: [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', CHROMIUM, ...chromiumFlags(), 'about:blank'],
      env: Object.assign({}, process.env, { HOME: PROFILE }),
    }));
  }
  return puppeteer.launch(Object.assign(options, { executablePath: CHROMIUM, args: [...chromiumFlags(), 'about:blank'] }));
}

let step = 0;
let pageForLog = null;
async function log(text) {
  const n = pageForLog ? await pageForLog.evaluate(() => window.ensembleConsole.stats.t.length).catch(() => '?') : '?';
  console.log(`  ${String(++step).padStart(2)} ${text} [${n}]`);
}

function assert(cond, message) {
  if (!cond) throw new Error('assertion failed: ' + message);
}

async function shot(page, name) {
  if (!SHOTS) return;
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `console-${name}.png`), fullPage: true });
}

async function text(page, selector) {
  return page.$eval(selector, (el) => el.textContent);
}

// @predicate (text, element, arg) runs in the page: it sees no variable of
// this file, only @arg (JSON).
async function waitText(page, selector, predicate, what, arg = null) {
  // An expression, evaluated by the DevTools protocol (the page's CSP
  // forbids eval to the page itself).
  const expr = `(() => { const el = document.querySelector(${JSON.stringify(selector)}); ` +
    `return !!el && (${predicate.toString()})(el.textContent, el, ${JSON.stringify(arg)}); })()`;
  try {
    await page.waitForFunction(expr, { timeout: WAIT });
  } catch (e) {
    const now = await page.$eval(selector, (el) => el.textContent).catch(() => '(no such element)');
    const app = await page.evaluate(() => {
      const a = window.ensembleConsole;
      return a ? { link: a.sock && a.sock.state, points: a.stats.t.length, view: a.current && a.current.id, totals: a.stats.totals } : null;
    }).catch(() => null);
    throw new Error(`${what}: ${selector} reads ${JSON.stringify(now.slice(0, 400))} (${e.message.split('\n')[0]}); console ${JSON.stringify(app)}`);
  }
}

// Records, in the page, every distinct text @selector's element (or its
// .streaming descendant) shows while it streams, from now on.
async function recordStreaming(page, selector) {
  await page.evaluate((sel) => {
    window.__seen = window.__seen || {};
    const seen = (window.__seen[sel] = new Set());
    const el = document.querySelector(sel);
    new MutationObserver(() => {
      const s = el.classList.contains('streaming') ? el : el.querySelector('.streaming');
      if (s && /w\d/.test(s.textContent)) seen.add(s.textContent);
    }).observe(el, { subtree: true, childList: true, characterData: true, attributes: true });
  }, selector);
}

async function streamedSteps(page, selector) {
  return page.evaluate((sel) => window.__seen[sel].size, selector);
}

async function view(page, id) {
  await page.click(`#nav a[data-view="${id}"]`);
  await page.waitForSelector(`#view-${id}`, { timeout: WAIT });
}

// A second client, as another program would be: the native protocol on /ws.
function nativeClient() {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(URL.replace(/^http/, 'ws') + '/ws');
    let n = 0;
    const pending = new Map();
    ws.on('message', (data) => {
      const msg = JSON.parse(data.toString());
      if (msg.id && pending.has(msg.id)) {
        pending.get(msg.id)(msg);
        pending.delete(msg.id);
      }
    });
    ws.on('open', () => resolve({
      request(action, payload) {
        const id = 'n' + ++n;
        ws.send(JSON.stringify({ id, action, data: payload }));
        return new Promise((res) => pending.set(id, res));
      },
      close: () => ws.close(),
    }));
    ws.on('error', reject);
  });
}

function watchPage(page, problems) {
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warn') console.error('page:', m.text()); });
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push('console error: ' + m.text());
  });
  page.on('requestfailed', (r) => {
    if (!r.url().startsWith(URL)) problems.push('a request left the daemon: ' + r.url());
  });
  page.on('request', (r) => {
    if (!r.url().startsWith(URL) && !r.url().startsWith('ws') && !r.url().startsWith('data:')) problems.push('a request left the daemon: ' + r.url());
  });
}

async function owner() {
  const browser = await launch(0);
  const problems = [];
  try {
    const page = await browser.newPage();
    pageForLog = page;
    watchPage(page, problems);

    // ---- overview
    await page.goto(URL + '/', { waitUntil: 'domcontentloaded', timeout: WAIT });
    await page.waitForSelector('#health-status', { timeout: WAIT });
    assert(await page.$eval('#auth', (el) => el.hidden), 'the daemon\'s own user was asked for a token');
    await waitText(page, '#link', (t) => t === 'live', 'the console never went live');
    await page.waitForSelector('#overview-plugins tr[data-plugin="transport-http"]', { timeout: WAIT });
    await waitText(page, '#failed-plugins', (t) => t.includes('bad-major') && t.includes('ABI'), 'the refused plugin and its reason are not shown');
    await waitText(page, '#failed-plugins li[data-plugin="bad-init"]', (t) => t.startsWith('failed') && t.includes('init failed'), 'a plugin whose init failed is not told from a refused one');
    await waitText(page, '#health-status', (t) => t === 'degraded', 'health is not degraded with a refused plugin');
    const before = await text(page, '#stat-connections .stat-value');
    await log(`overview: health degraded, refused plugin with its reason, ${before} connection(s)`);
    // a new connection shows up within a stats point
    const other = await nativeClient();
    await waitText(page, '#stat-connections .stat-value', (t) => Number(t) > 0, 'connections did not move');
    await shot(page, 'overview');

    // ---- agents: a request to one, its answer
    await view(page, 'agents');
    await page.waitForSelector('tr[data-agent="naming"]', { timeout: WAIT });
    await page.click('tr[data-agent="naming"]');
    await page.waitForSelector('#request-form', { timeout: WAIT });
    // an action declared as a tool: its description, and its required fields as a skeleton
    await page.click('.chip[data-action="allocate_namespace"]');
    await waitText(page, '#req-tool', (t) => t.includes('Allocates'), 'the action\'s description is not shown');
    const skeleton = JSON.parse(await page.$eval('#req-data', (el) => el.value));
    assert('project' in skeleton && 'environment' in skeleton, 'the skeleton is ' + JSON.stringify(skeleton));
    // bad input: the daemon checks the schema and names the field
    await page.$eval('#req-data', (el) => { el.value = '{"environment": "dev"}'; });
    await page.click('#request-form button[type=submit]');
    await waitText(page, '#req-answer', (t) => t.includes('INVALID_PARAMETERS') && t.includes('project'), 'the failing field is not named');
    await page.$eval('#req-action', (el) => { el.value = 'validate_name'; el.dispatchEvent(new Event('input')); });
    await waitText(page, '#req-tool', (t) => !t.includes('Allocates'), 'the description did not follow the action');
    await page.$eval('#req-data', (el) => { el.value = '{"name": "Bad Name"}'; });
    await page.click('#request-form button[type=submit]');
    await waitText(page, '#req-answer', (t) => t.includes('success') && t.includes('"valid"'), 'no answer from the agent');
    // bad input: data that is not JSON is refused before sending
    await page.$eval('#req-data', (el) => { el.value = '{nope'; });
    await page.click('#request-form button[type=submit]');
    await waitText(page, '#req-answer', (t) => t.includes('INVALID_JSON'), 'bad JSON was not refused');
    await page.$eval('#req-data', (el) => { el.value = '{"name": "Bad Name"}'; });
    await page.click('#request-form button[type=submit]');
    await waitText(page, '#req-answer', (t) => t.includes('"valid"'), 'no answer from the agent');
    // an agent that registers now appears without a reload
    await other.request('agents.register', { name: 'console-probe', actions: ['ping'] });
    await page.waitForSelector('tr[data-agent="console-probe"]', { timeout: WAIT });
    // the list changed under the form: the form and its answer stay
    await waitText(page, '#req-answer', (t) => t.includes('"valid"'), 'the answer went away when the list changed');
    assert((await page.$eval('#req-action', (el) => el.value)) === 'validate_name', 'the form was reset');
    await log('agents: a tool\'s schema as a skeleton, its failing field named; naming answered validate_name; a new agent appeared live and the form stayed');
    await page.$eval('#req-answer', (el) => el.scrollIntoView({ block: 'center' }));
    await shot(page, 'agents');

    // ---- playground: a streamed completion and its routing decision
    await view(page, 'playground');
    await page.waitForSelector('#pg-model option[value="fake-drip"]', { timeout: WAIT });
    await page.select('#pg-model', 'fake-drip');
    await page.$eval('#pg-prompt', (el) => { el.value = 'Stream twenty words, please.'; });
    await recordStreaming(page, '#pg-answer');
    await page.click('#pg-run');
    await page.waitForSelector('#pg-result-grid', { timeout: WAIT });
    const full = (await text(page, '#pg-answer')).trim();
    assert(full === Array.from({ length: 20 }, (_, i) => 'w' + i).join(' '), 'the streamed answer is ' + JSON.stringify(full));
    // tokens arrived while it still streamed, piece by piece
    const pgSteps = await streamedSteps(page, '#pg-answer');
    assert(pgSteps >= 5, `the answer showed ${pgSteps} states while streaming`);
    assert((await text(page, '#pg-chosen')) === 'drip', 'the decision names ' + (await text(page, '#pg-chosen')));
    await waitText(page, '#pg-reasoning', (t) => t.includes('drip'), 'no reasoning');
    await waitText(page, '#pg-ranking', (t) => t.includes('drip'), 'no ranking');
    await waitText(page, '#pg-result-grid', (t) => t.includes('drip') && t.includes('$'), 'no result with cost');
    await log(`playground: the answer grew in ${pgSteps} steps to 20 words; routed to drip with its reasoning and cost`);
    await shot(page, 'playground');

    // ---- sessions: a session's stream as it runs, and tool calls as they come
    await view(page, 'sessions');
    await page.$eval('#new-model', (el) => { el.value = 'fake-drip'; });
    await page.click('#new-session-form button[type=submit]');
    await waitText(page, '#session-status', (t) => t === 'idle', 'the new session is not shown');
    const sid = await text(page, '#session-card code');
    await page.$eval('#task-input', (el) => { el.value = 'hello session'; });
    await recordStreaming(page, '#transcript');
    await page.click('#task-form button[type=submit]');
    await page.waitForSelector('#session-events li[data-type="task_completed"]', { timeout: WAIT });
    await waitText(page, '#transcript', (t) => t.includes('hello session') && t.includes('w19'), 'the session stream is incomplete');
    const sessSteps = await streamedSteps(page, '#transcript');
    assert(sessSteps >= 5, `the session's answer showed ${sessSteps} states while streaming`);
    const types = await page.$$eval('#session-events li', (els) => els.map((e) => e.dataset.type));
    assert(types.includes('task_executing') && types.includes('stream_start') && types.includes('stream_chunk') && types.includes('stream_end'), 'stream events: ' + types);
    // a tool call and its result, as the session's tool loop publishes them
    const taskId = 'tool-task';
    const base = { sessionId: sid, taskId, task: 'look it up' };
    await other.request('publish', { topic: `session.${sid}.tool_call_start`, data: Object.assign({ type: 'tool_call_start', data: { id: 'call-1', name: 'lookup', arguments: '{"q":"ensemble"}' } }, base) });
    await waitText(page, '#transcript .tool-call[data-call="call-1"]', (t) => t.includes('lookup') && t.includes('"q"'), 'the tool call is not shown');
    await other.request('publish', { topic: `session.${sid}.tool_call_result`, data: Object.assign({ type: 'tool_call_result', data: { id: 'call-1', name: 'lookup', result: { found: 3 } } }, base) });
    await waitText(page, '#transcript .tool-call[data-call="call-1"]', (t) => t.includes('result') && t.includes('"found"'), 'the tool result is not shown');
    await page.waitForSelector('#session-events li[data-type="tool_call_result"]', { timeout: WAIT });
    await log(`sessions: a streamed task (events ${[...new Set(types)].join(', ')}); a tool call and its result shown as they came`);
    await shot(page, 'sessions');

    // ---- providers and budget
    // a backend that fails is cooled down: the view shows it without a reload
    await view(page, 'providers');
    await page.waitForSelector('tr[data-backend="broken"]', { timeout: WAIT });
    const ack = await other.request('complete', { prompt: 'fail, please', model: 'fake-broken' });
    assert(ack.status === 'success' && ack.data.provider === 'broken', 'complete: ' + JSON.stringify(ack));
    await waitText(page, 'tr[data-backend="broken"]', (t) => t.includes('cooling down') && /1 \/ 1/.test(t) && !/\b0%/.test(t), 'the failing backend is not shown cooling down');
    await page.waitForSelector('tr[data-backend="drip"]', { timeout: WAIT });
    await waitText(page, '#budget', (t) => t.includes('of $2'), 'no budget');
    await waitText(page, 'tr[data-backend="drip"]', (t) => t.includes('ready') && /2 \/ 0/.test(t), 'drip backend without its calls');
    await waitText(page, '#budget-spent', (t) => t !== '$0', 'no spend recorded');
    await log(`providers: budget ${(await text(page, '#budget-spent'))} spent of $2; broken cooling down after its failure (${(await text(page, '[data-cooldown="broken"]'))}); latency, errors and calls per backend`);
    await shot(page, 'providers');

    // ---- events: a live tail with a glob filter
    await view(page, 'events');
    await page.$eval('#tail-glob', (el) => { el.value = 'news.*'; });
    await page.click('#tail-form button[type=submit]');
    await waitText(page, '#tail-state', (t) => t === 'live: news.*', 'the tail did not subscribe');
    await other.request('publish', { topic: 'sports.goal', data: { n: 0 } });
    await other.request('publish', { topic: 'news.tech', data: { headline: 'Ensemble has a console' } });
    await page.waitForSelector('#tail-rows tr[data-topic="news.tech"]', { timeout: WAIT });
    assert(!(await page.$('#tail-rows tr[data-topic="sports.goal"]')), 'the glob let sports.goal through');
    // the publish form, back into the tail
    await page.$eval('#pub-topic', (el) => { el.value = 'news.console'; });
    await page.click('#publish-form button[type=submit]');
    await page.waitForSelector('#tail-rows tr[data-topic="news.console"]', { timeout: WAIT });
    await page.$eval('#tail-glob', (el) => { el.value = '*'; });
    await page.click('#tail-form button[type=submit]');
    await waitText(page, '#tail-state', (t) => t === 'live: *', 'the tail did not widen');
    await other.request('publish', { topic: 'sports.goal', data: { n: 1 } });
    await page.waitForSelector('#tail-rows tr[data-topic="sports.goal"]', { timeout: WAIT });
    await log('events: news.* showed news.tech and not sports.goal; the form published news.console; * shows everything');
    await shot(page, 'events');

    // ---- charts: history at once, then new points
    await view(page, 'charts');
    await waitText(page, '#chart-points', (t, el) => Number(el.dataset.count) >= 2, 'no history');
    const n0 = Number(await page.$eval('#chart-points', (el) => el.dataset.count));
    await waitText(page, '#chart-points', (t, el, before) => Number(el.dataset.count) > before || Number(el.dataset.count) === 600, 'no new point', n0);
    const latency = await text(page, '#chart-completion_latency_ms .chart-summary');
    assert(latency.includes('mean'), 'no completion latency in the window: ' + latency);
    await log(`charts: ${n0} points at once, then more; completion latency ${latency}`);
    await shot(page, 'charts');

    other.close();
    assert(!problems.length, problems.join('\n'));
  } finally {
    await browser.close();
  }
}

async function stranger() {
  const uid = Number(process.env.ENS_STRANGER_UID);
  const browser = await launch(uid);
  const problems = [];
  try {
    const page = await browser.newPage();
    watchPage(page, problems);
    await page.goto(URL + '/', { waitUntil: 'domcontentloaded', timeout: WAIT });
    await page.waitForSelector('#token-form', { timeout: WAIT });
    await waitText(page, '#token-form', (t) => t.includes('bearer token'), 'the prompt does not say why');
    await log(`another user (uid ${uid}) is asked for the token`);
    await shot(page, 'token');
    // a wrong token is refused, with the daemon's reason
    await page.type('#token-input', 'not-the-token');
    await page.click('#token-form button[type=submit]');
    await waitText(page, '#token-form', (t) => t.includes('refused that token'), 'a wrong token was not refused');
    await page.$eval('#token-input', (el) => { el.value = ''; });
    await page.type('#token-input', process.env.ENS_TOKEN);
    await page.click('#token-form button[type=submit]');
    await page.waitForSelector('#health-status', { timeout: WAIT });
    await waitText(page, '#link', (t) => t === 'live', 'the WebSocket with ?token= did not go live');
    assert(await page.$eval('#auth', (el) => el.hidden), 'the prompt stayed');
    const kept = await page.evaluate(() => sessionStorage.getItem('ensemble.token'));
    assert(kept === process.env.ENS_TOKEN, 'the token is not kept in sessionStorage');
    await log('with the token: the console is live (fetch with Authorization, WebSocket with ?token=)');
    // problems from the refused attempts are expected: only page errors count
    const real = problems.filter((p) => p.startsWith('page error') || p.startsWith('a request left'));
    assert(!real.length, real.join('\n'));
  } finally {
    await browser.close();
  }
}

const started = Date.now();
try {
  if (mode === 'owner') await owner();
  else if (mode === 'stranger') await stranger();
  else throw new Error('unknown mode ' + mode);
  console.log(`  ${mode}: done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
} catch (e) {
  console.error(`FAIL (${mode}): ${e.stack || e}`);
  process.exit(1);
}
