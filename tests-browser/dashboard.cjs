// Drives the SOC dashboard in Debian's chromium with playwright-core and
// prints what a user sees, as one JSON object on stdout; the Rust test
// (crates/cli/tests/dashboard.rs) asserts on it.
//
//   node dashboard.cjs main    URL TOKEN OUTDIR     every panel, a drill-down,
//                                                   the in-browser proof check,
//                                                   screenshots, timings
//   node dashboard.cjs verify  URL TOKEN OUTDIR N   open event N and verify it
//   node dashboard.cjs timing  URL TOKEN OUTDIR     first-load and panel timings
//
// playwright-core comes from NODE_PATH (scripts/setup.sh installs it).
const { chromium } = require('playwright-core');
const path = require('path');

const [mode, url, token, outdir, arg] = process.argv.slice(2);
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

async function signIn(page) {
  await page.goto(url);
  await page.waitForSelector('#login:not([hidden])');
  await page.fill('#token', token);
  await page.press('#token', 'Enter');
  await page.waitForSelector('[data-testid=tree-size] .value');
}

async function verifyStatus(page, index) {
  await page.fill('#event-index', String(index));
  await page.press('#event-index', 'Enter');
  await page.waitForFunction(() => /^(verified|failed)/.test(document.getElementById('verify-status').textContent)
    || document.querySelector('#event .error'), null, { timeout: 30000 });
  return {
    status: await page.textContent('#verify-status'),
    error: await page.$eval('#event .body', (b) => b.querySelector('.error')?.textContent ?? null),
    entry: await page.$eval('#event .body', (b) => b.querySelector('[data-testid=event-json]')?.textContent ?? null),
  };
}

// Navigation timing of a fresh load, and the panels' data requests.
async function timing(page) {
  const t0 = Date.now();
  await page.goto(url);
  await page.waitForSelector('[data-testid=tree-size] .value');
  await page.waitForFunction(() => [...document.querySelectorAll('.panel .body')].every((b) => b.getAttribute('aria-busy') !== 'true'), null, { timeout: 120000 });
  const wall = Date.now() - t0;
  return page.evaluate((wallMs) => {
    const nav = performance.getEntriesByType('navigation')[0];
    const res = performance.getEntriesByType('resource');
    const data = res.filter((r) => r.name.includes('/v1/dashboard/') && !r.name.includes('/stream'));
    const firstData = res.filter((r) => r.name.includes('/v1/dashboard/integrity')).map((r) => r.responseEnd)[0] ?? null;
    return {
      wall_ms: wallMs,
      nav: { response_end: nav.responseEnd, dom_content_loaded: nav.domContentLoadedEventEnd, load: nav.loadEventEnd },
      first_data_ms: firstData,
      scripts: res.filter((r) => /\.(js|wasm|css)$/.test(r.name)).map((r) => ({ name: r.name.replace(/^.*\//, ''), ms: r.duration })),
      panels: data.map((r) => ({ name: r.name.replace(/^.*\/v1\/dashboard\//, '').replace(/\?.*$/, ''), ms: r.duration })),
    };
  }, wall);
}

(async () => {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: FLAGS });
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const out = {};
  try {
    if (mode === 'main') {
      // Without a token: the login page, and no data from the API.
      await page.goto(url);
      await page.waitForSelector('#login:not([hidden])');
      out.unauthenticated = {
        login_shown: await page.isVisible('#login'),
        panels_hidden: await page.isHidden('main'),
        reason: await page.textContent('#login-reason'),
        api_status: await page.evaluate(async () => (await fetch('/v1/dashboard/activity')).status),
      };
      await page.screenshot({ path: path.join(outdir, 'login.png') });

      await signIn(page);
      await page.waitForFunction(() => [...document.querySelectorAll('.panel .body')].slice(0, 5).every((b) => b.getAttribute('aria-busy') !== 'true'), null, { timeout: 120000 });
      out.integrity = {
        tree_size: await page.textContent('[data-testid=tree-size] .value'),
        text: await page.textContent('#integrity .body'),
      };
      out.compliance = await page.$$eval('#compliance .tile', (tiles) => tiles.map((t) => ({
        pack: t.dataset.pack,
        summary: t.querySelector('.summary').textContent,
        rules: [...t.querySelectorAll(':scope > ul > li')].map((li) => ({ id: li.dataset.rule, verdict: li.className, violations: [...li.querySelectorAll('.violations a.leaf')].map((a) => a.textContent), measures: [...li.querySelectorAll('.measure')].map((m) => m.textContent) })),
      })));
      out.activity = {
        total: await page.textContent('[data-testid=activity-total] .value'),
        gaps: await page.textContent('[data-testid=gap-count] .value'),
        rows: await page.$$eval('#activity table:first-of-type tbody tr', (rows) => rows.map((r) => [...r.children].map((c) => c.textContent))),
        chart_label: await page.getAttribute('#activity svg', 'aria-label'),
      };
      out.proofs = {
        receipts: await page.textContent('[data-testid=receipts] .value'),
        queued: await page.textContent('[data-testid=jobs-queued] .value'),
        cancelled: await page.textContent('[data-testid=jobs-cancelled] .value'),
      };
      out.findings = { text: await page.textContent('#findings .body') };
      await page.screenshot({ path: path.join(outdir, 'dashboard.png'), fullPage: true });

      // The SOC report, as HTML and as a PDF printed by headless Chromium,
      // fetched as the page does, and downloaded by its button.
      out.reports = await page.evaluate(async (t) => {
        const get = async (ext) => {
          const r = await fetch(`/v1/dashboard/report.${ext}?pack=telecoms`, { headers: { Authorization: `Bearer ${t}` } });
          const b = new Uint8Array(await r.arrayBuffer());
          return { status: r.status, type: r.headers.get('content-type'), head: new TextDecoder().decode(b.slice(0, 5)), size: b.length, text: ext === 'html' ? new TextDecoder().decode(b) : null };
        };
        return { html: await get('html'), pdf: await get('pdf') };
      }, token);
      const [download] = await Promise.all([page.waitForEvent('download', { timeout: 90000 }), page.click('button[data-format=pdf]')]);
      out.reports.download = download.suggestedFilename();

      // Drill down: the first violation of the telecoms pack opens its event, verified here.
      const link = page.locator('#compliance .tile[data-pack=telecoms] .violations a.leaf').first();
      out.drill = { link: await link.textContent() };
      await link.click();
      await page.waitForFunction(() => /^(verified|failed)/.test(document.getElementById('verify-status').textContent), null, { timeout: 30000 });
      out.drill.status = await page.textContent('#verify-status');
      out.drill.entry = await page.textContent('[data-testid=event-json]');
      await page.locator('#event').screenshot({ path: path.join(outdir, 'event-verified.png') });

      // Lineage of the drilled event's output.
      await page.click('#event button:has-text("Trace its output")');
      await page.waitForFunction(() => document.querySelector('#lineage .body table, #lineage .body p'), null, { timeout: 30000 });
      out.lineage = { events: await page.$$eval('#lineage .body table tbody tr', (r) => r.map((x) => x.children[1].textContent)) };

      // Keyboard: the panels' controls are reachable with Tab.
      await page.focus('#event-index');
      await page.keyboard.press('Tab');
      out.keyboard = { after_event_index: await page.evaluate(() => document.activeElement?.textContent ?? null) };

      if (arg) out.lineage_of = await (async () => {
        await page.fill('#lineage-digest', arg);
        await page.press('#lineage-digest', 'Enter');
        await page.waitForFunction(() => document.querySelector('#lineage .body table, #lineage .body p'), null, { timeout: 30000 });
        await page.locator('#lineage').screenshot({ path: path.join(outdir, 'lineage.png') });
        return page.$$eval('#lineage .body table tbody tr', (r) => r.map((x) => ({ type: x.children[1].textContent, about: x.children[4].textContent })));
      })();
    } else if (mode === 'verify') {
      await signIn(page);
      out.verify = await verifyStatus(page, Number(arg));
      await page.locator('#event').screenshot({ path: path.join(outdir, `event-${arg}.png`) });
    } else if (mode === 'timing') {
      await signIn(page);
      out.timing = await timing(page);
    } else {
      throw new Error(`unknown mode ${mode}`);
    }
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(1); });
