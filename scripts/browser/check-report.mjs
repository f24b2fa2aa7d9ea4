// Opens a voicebench HTML report (DIR/index.html) over file:// in headless Debian chromium,
// driven by playwright-core, and fails when the page is broken: console errors, uncaught
// exceptions, failed requests, images that did not load, recordings (<audio>) that do not open,
// any request that is not file:// or data: (a report must be self-contained), broken local
// links, a blank screenshot, no <h1>.
// Run it through check-report.sh, which installs chromium and playwright-core first.
// Usage: node check-report.mjs DIR [SCREENSHOT.png]   exit 0 ok, 1 check failed, 2 usage.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath, pathToFileURL } from 'node:url';

const VIEWPORT = { width: 1280, height: 900 };
const NAV_TIMEOUT_MS = 30_000;
const IMAGE_TIMEOUT_MS = 10_000;
const SETTLE_MS = 300;
// A screenshot is "blank" below either bound: a rendered report has text (anti-aliased, so
// many shades) and plots; an empty or failed page is one flat colour.
const MIN_DISTINCT_COLOURS = 4;
const MIN_INK_FRACTION = 0.001; // pixels differing from the most common (background) colour
const LOCAL_SCHEMES = ['file:', 'data:', 'blob:', 'about:'];

// check-report.sh passes its start time (wall clock, ms) so the time printed includes install.sh.
const startMs = Number(process.env.CHECK_START_MS) || Date.now();
const elapsedS = () => (Date.now() - startMs) / 1000;

function usage(msg) {
  console.error(`check-report: ${msg}`);
  console.error('usage: scripts/browser/check-report.sh DIR [SCREENSHOT.png]');
  console.error('  DIR: a report directory holding index.html (and plots/, CSV/JSON files beside it)');
  console.error('  SCREENSHOT.png: where to write the full-page screenshot (optional)');
  process.exit(2);
}

const [dirArg, shotArg, ...extra] = process.argv.slice(2);
if (!dirArg || extra.length) usage(!dirArg ? 'missing DIR' : `too many arguments: ${extra.join(' ')}`);
const dir = path.resolve(dirArg);
if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) usage(`not a directory: ${dirArg}`);
const indexPath = path.join(dir, 'index.html');
if (!fs.existsSync(indexPath)) usage(`no index.html in ${dirArg} (pass the report directory that holds index.html)`);
if (shotArg && !shotArg.toLowerCase().endsWith('.png')) usage(`screenshot path must end in .png: ${shotArg}`);

const { chromium } = await import('playwright-core');
const pageUrl = pathToFileURL(indexPath).href;
const isLocal = (u) => LOCAL_SCHEMES.some((s) => u.startsWith(s));
const short = (u) => (u.startsWith('data:') ? u.slice(0, 40) + '…' : u.startsWith(pathToFileURL(dir).href + '/') ? path.relative(dir, fileURLToPath(u)) : u);

const problems = [];
const external = new Set();
const failedUrls = new Set();

// playwright-core already passes --headless, --no-sandbox (needed as root),
// --disable-background-networking, --disable-component-update, --disable-sync, --no-first-run
// and its own --disable-features list (so none is given here: a second one would replace it).
const chromiumPath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
let browser;
try {
  browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: [
      '--disable-gpu',
      '--disable-quic',
      // Nothing this browser does may reach a network, whatever the page asks for.
      '--host-resolver-rules=MAP * ~NOTFOUND',
    ],
  });
} catch (err) {
  console.error(`check-report: FAIL: could not start chromium (${chromiumPath}): ${err.message.split('\n')[0]}`);
  console.error('  run scripts/browser/install.sh, or set CHROMIUM_PATH to a chromium binary');
  process.exit(1);
}
let exitCode = 1;
try {
  const context = await browser.newContext({ viewport: VIEWPORT, deviceScaleFactor: 1, serviceWorkers: 'block' });
  // Every request that is not file:/data: is recorded as a failure and never sent.
  await context.route((u) => !isLocal(u.href), (route) => {
    external.add(route.request().url());
    return route.abort('blockedbyclient');
  });
  const page = await context.newPage();
  page.on('request', (req) => { if (!isLocal(req.url())) external.add(req.url()); });
  page.on('websocket', (ws) => external.add(ws.url()));
  page.on('requestfailed', (req) => {
    if (!isLocal(req.url())) return; // reported as external
    // A media element stops its request once it has what it preloads (the metadata): an abort is not a failure.
    // Whether each recording opened is checked on its <audio> element below.
    if (req.resourceType() === 'media' && req.failure()?.errorText === 'net::ERR_ABORTED') return;
    failedUrls.add(req.url());
    problems.push(`failed request: ${short(req.url())} (${req.failure()?.errorText ?? 'failed'})`);
  });
  page.on('pageerror', (err) => problems.push(`uncaught exception: ${String(err.message || err).split('\n')[0]}`));
  page.on('crash', () => problems.push('page crashed'));
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const loc = msg.location();
    // "Failed to load resource" repeats a failed or blocked request already reported.
    if (/^Failed to load resource/.test(msg.text()) && (failedUrls.has(loc.url) || external.has(loc.url))) return;
    const where = loc.url ? ` (${short(loc.url)}:${loc.lineNumber + 1})` : '';
    problems.push(`console error: ${msg.text()}${where}`);
  });

  await page.goto(pageUrl, { waitUntil: 'load', timeout: NAV_TIMEOUT_MS });
  // Let timers and animation frames queued at load run, so errors they raise are seen.
  await page.waitForTimeout(SETTLE_MS);

  // Lazy images are made eager and awaited, so every <img> is checked, not only those in view.
  const facts = await page.evaluate(async ({ timeoutMs, localSchemes }) => {
    const isLocal = (u) => localSchemes.some((s) => u.startsWith(s));
    const imgs = [...document.images];
    const images = await Promise.all(imgs.map(async (img) => {
      if (img.loading === 'lazy') img.loading = 'eager';
      const src = img.currentSrc || img.src || img.getAttribute('src') || '(no src)';
      let decoded = true;
      try {
        await Promise.race([img.decode(), new Promise((_, rej) => setTimeout(() => rej(new Error('timeout')), timeoutMs))]);
      } catch { decoded = false; }
      return { src, decoded, w: img.naturalWidth, h: img.naturalHeight };
    }));
    // Resources the DOM names but may not have requested yet (preload, lazy, media posters…).
    const refs = [];
    for (const el of document.querySelectorAll('[src], [srcset], link[href], object[data], [poster]')) {
      for (const attr of ['src', 'href', 'data', 'poster']) {
        if (el.tagName === 'A' || !el.hasAttribute(attr)) continue;
        const u = new URL(el.getAttribute(attr), document.baseURI).href;
        if (!isLocal(u)) refs.push(`<${el.tagName.toLowerCase()} ${attr}="${u}">`);
      }
      if (el.hasAttribute('srcset')) {
        for (const part of el.getAttribute('srcset').split(',')) {
          const raw = part.trim().split(/\s+/)[0];
          if (!raw) continue;
          const u = new URL(raw, document.baseURI).href;
          if (!isLocal(u)) refs.push(`<${el.tagName.toLowerCase()} srcset="${u}">`);
        }
      }
    }
    const links = [...document.querySelectorAll('a[href]')]
      .map((a) => a.href)
      .filter((u) => u.startsWith('file:') && u.split('#')[0] !== location.href.split('#')[0]);
    const h1s = [...document.querySelectorAll('h1')].map((h) => h.textContent.trim());
    // Every recording on the page is opened: its metadata must load (a stereo WAV the browser decodes) with a
    // duration, or it is reported as broken.
    const audios = await Promise.all([...document.querySelectorAll('audio')].map((a) => new Promise((resolve) => {
      const src = a.currentSrc || a.src || a.getAttribute('src') || '(no src)';
      const done = (ok, why) => resolve({ src, ok, why, duration: a.duration });
      if (a.readyState >= 1) return done(a.duration > 0, 'no duration');
      a.addEventListener('loadedmetadata', () => done(a.duration > 0, 'no duration'), { once: true });
      a.addEventListener('error', () => done(false, `error ${a.error ? a.error.code : '?'}`), { once: true });
      setTimeout(() => done(false, 'timeout'), timeoutMs);
      a.preload = 'metadata';
      a.load();
    })));
    await document.fonts.ready;
    return {
      images, refs, links, h1s, audios,
      height: Math.max(document.documentElement.scrollHeight, document.body ? document.body.scrollHeight : 0),
    };
  }, { timeoutMs: IMAGE_TIMEOUT_MS, localSchemes: LOCAL_SCHEMES });

  for (const u of external) problems.unshift(`network request (the page must be self-contained, only file:// and data: allowed): ${u}`);
  for (const r of facts.refs) if (![...external].some((u) => r.includes(u))) problems.push(`external resource referenced: ${r}`);
  const badImages = facts.images.filter((i) => !i.decoded || !(i.w > 0));
  for (const i of badImages) problems.push(`image did not load (naturalWidth ${i.w}): ${short(i.src)}`);
  let linksOk = 0;
  for (const u of new Set(facts.links)) {
    const p = fileURLToPath(u.split('#')[0].split('?')[0]);
    if (fs.existsSync(p)) linksOk++;
    else problems.push(`broken local link: ${short(u)} (no such file)`);
  }
  for (const a of facts.audios.filter((x) => !x.ok)) problems.push(`recording did not open (${a.why}): ${short(a.src)}`);
  if (facts.h1s.length === 0) problems.push('no <h1> on the page');
  else if (!facts.h1s.some((t) => t.length > 0)) problems.push('the page\'s <h1> is empty');

  const png = await page.screenshot({ fullPage: true, type: 'png', animations: 'disabled' });
  if (shotArg) {
    fs.mkdirSync(path.dirname(path.resolve(shotArg)), { recursive: true });
    fs.writeFileSync(shotArg, png);
  }
  const { width, height, distinct, inkFraction } = colourStats(png);
  if (distinct < MIN_DISTINCT_COLOURS || inkFraction < MIN_INK_FRACTION) {
    problems.push(`screenshot is blank: ${distinct} distinct colour(s), ${(inkFraction * 100).toFixed(3)}% non-background pixels (need >= ${MIN_DISTINCT_COLOURS} and >= ${MIN_INK_FRACTION * 100}%)`);
  }

  const shotNote = shotArg ? `, screenshot ${shotArg}` : '';
  if (problems.length) {
    console.error(`check-report: FAIL ${indexPath}: ${problems.length} problem(s)`);
    for (const p of problems) console.error(`  - ${p}`);
    console.error(`  (page ${width}x${height} px, ${elapsedS().toFixed(1)} s${shotNote})`);
    exitCode = 1;
  } else {
    console.log(`check-report: OK ${indexPath}: ${facts.images.length}/${facts.images.length} images loaded, ` +
      `${linksOk} local links ok, ${facts.audios.length} recording(s) opened ` +
      `(${facts.audios.map((a) => a.duration.toFixed(1) + ' s').join(', ') || 'none'}), ` +
      `${distinct} distinct colours, page ${width}x${height} px ` +
      `(document ${facts.height} px), ${elapsedS().toFixed(1)} s${shotNote}`);
    exitCode = 0;
  }
} catch (err) {
  console.error(`check-report: FAIL ${indexPath}: could not check the page: ${err.message.split('\n')[0]}`);
  exitCode = 1;
} finally {
  await browser.close();
}
process.exit(exitCode);

// Decodes the 8-bit, non-interlaced RGB/RGBA PNG that chromium writes (node's zlib only) and
// counts distinct colours and the share of pixels unlike the most common one.
function colourStats(buf) {
  let pos = 8;
  let width = 0, height = 0, colorType = 0, bitDepth = 0, interlace = 0;
  const idat = [];
  while (pos < buf.length) {
    const len = buf.readUInt32BE(pos);
    const type = buf.toString('latin1', pos + 4, pos + 8);
    const data = buf.subarray(pos + 8, pos + 8 + len);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0); height = data.readUInt32BE(4);
      bitDepth = data[8]; colorType = data[9]; interlace = data[12];
    } else if (type === 'IDAT') idat.push(data);
    else if (type === 'IEND') break;
    pos += 12 + len;
  }
  const bpp = { 2: 3, 6: 4 }[colorType];
  if (bitDepth !== 8 || !bpp || interlace) throw new Error(`unexpected screenshot PNG (depth ${bitDepth}, colour type ${colorType}, interlace ${interlace})`);
  const raw = zlib.inflateSync(Buffer.concat(idat));
  const stride = width * bpp;
  let prev = Buffer.alloc(stride);
  const counts = new Map();
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)];
    const line = Buffer.from(raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1)));
    for (let x = 0; x < stride; x++) {
      const a = x >= bpp ? line[x - bpp] : 0, b = prev[x], c = x >= bpp ? prev[x - bpp] : 0;
      let v = line[x];
      if (f === 1) v += a;
      else if (f === 2) v += b;
      else if (f === 3) v += (a + b) >> 1;
      else if (f === 4) { const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c); v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c; }
      line[x] = v & 0xff;
    }
    for (let x = 0; x < stride; x += bpp) {
      const key = (line[x] << 16) | (line[x + 1] << 8) | line[x + 2];
      counts.set(key, (counts.get(key) || 0) + 1);
    }
    prev = line;
  }
  let top = 0;
  for (const n of counts.values()) if (n > top) top = n;
  return { width, height, distinct: counts.size, inkFraction: 1 - top / (width * height) };
}
