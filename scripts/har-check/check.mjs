// Checks a HAR file that http-trace wrote with two tools we did not write:
// 1. har-validator: the file against the HAR 1.2 JSON schema;
// 2. Playwright's routeFromHAR, in Debian's Chromium: every answered request of the file is
//    made again from a page, and the answer the browser gets from the HAR must be the status
//    and body that http-trace's JSON output of the same exchanges has (JSON.jsonl: -o json of
//    the same recording, whose exchanges come in the same order).
// Usage: node check.mjs FILE.har JSON.jsonl (one line per request made; exit 1 on a mismatch)
import fs from 'node:fs';
import validator from 'har-validator';
import { chromium } from 'playwright-core';

const file = process.argv[2];
const har = JSON.parse(fs.readFileSync(file, 'utf8'));
// The exchanges HAR has a place for: those whose request was seen.
const json = fs.readFileSync(process.argv[3], 'utf8').split('\n').filter((l) => l)
  .map((l) => JSON.parse(l)).filter((x) => x.kind === 'exchange' && x.method !== null);
if (json.length !== har.log.entries.length) {
  console.error(`${har.log.entries.length} HAR entries, ${json.length} exchanges in the JSON`);
  process.exit(1);
}
har.log.entries.forEach((e, i) => { e.json = json[i]; });
try {
  await validator.har(har);
} catch (e) {
  console.error(`har-validator: ${e.message}: ${JSON.stringify(e.errors, null, 1)}`);
  process.exit(1);
}
console.log(`har-validator: ${har.log.entries.length} entries valid`);

// No background traffic: this machine has no network beyond loopback.
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
let failed = 0;
try {
  const context = await browser.newContext();
  // Nothing reaches the network: a request the HAR does not answer fails.
  await context.routeFromHAR(file, { notFound: 'abort' });
  const page = await context.newPage();
  const answered = har.log.entries.filter((e) => e.response.status >= 200);
  const origins = [...new Set(answered.map((e) => new URL(e.request.url).origin))];
  for (const origin of origins) {
    // A page of that origin, served from the HAR too, so that its fetches may read answers.
    const home = answered.find((e) => e.request.url.startsWith(origin) && e.request.method === 'GET');
    if (!home) throw new Error(`no GET of ${origin} to open a page with`);
    await page.goto(home.request.url);
    for (const e of answered.filter((x) => x.request.url.startsWith(origin))) {
      const req = e.request;
      const got = await page.evaluate(async ({ url, method, body, type }) => {
        const headers = type ? { 'Content-Type': type } : {};
        const r = await fetch(url, { method, body, headers });
        return { status: r.status, text: method === 'HEAD' ? '' : await r.text() };
      }, {
        url: req.url,
        method: req.method,
        body: req.postData ? req.postData.text : undefined,
        type: req.postData ? req.postData.mimeType : undefined,
      });
      const j = e.json;
      const want = j.response_body;
      const ok = req.method === j.method && req.url.endsWith(j.target) &&
        got.status === j.status && (req.method === 'HEAD' || got.text === want);
      console.log(`${ok ? 'ok' : 'MISMATCH'} ${req.method} ${req.url} -> ${got.status} ${got.text.length}B`);
      if (!ok) {
        console.log(`  want ${j.method} ${j.target} ${j.status} ${JSON.stringify(want)}, got ${JSON.stringify(got.text)}`);
        failed += 1;
      }
    }
  }
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
