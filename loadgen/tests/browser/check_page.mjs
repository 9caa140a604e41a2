// Checks a loadgen HTML run report in headless Chromium.
//
//   node check_page.mjs PAGE.html SCREENSHOT.png [--timing-runs N] [--first-screen FIRST.png]
//
// Opens PAGE.html as a file:// URL, runs the named checks below (one
// "ok  <check>: <detail>" or "FAIL <check>: <detail>" line each), saves a
// full-page PNG screenshot, prints load timings and the file size, and exits
// 1 if any check failed (2 on a usage error), 0 otherwise. --first-screen also
// saves the first 1280×900 screen alone (the README's picture).
//
// The DOM contract it checks (written by loadgen's report code):
// - <script type="application/json" id="page-data"> with {map, charts};
//   map is {nodes: [{id, name, type, kind, label: [line]}],
//   edges: [{from, to, label: [line]}]} or null when the run was not inspected.
// - <svg id="service-map"> holding g.node[data-node-id] (a rect and text
//   lines), g.edge[data-from][data-to] (paths and a g.edge-label with a rect
//   and text lines) and a g.legend.
// - per chart, <figure id="CHART_ID" class="chart"> with plotters' <svg>, each
//   series drawn as exactly one <polyline stroke="COLOR" points="x,y ...">.

import { chromium } from 'playwright-core';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

// The flags CI launches Chromium with. playwright-core adds its own switches
// too (among them --headless, --no-sandbox, --disable-background-networking
// and --disable-component-update again): repeated switches are harmless.
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

// Two boxes overlap only when they share more than this many pixels on both
// axes: boxes that merely touch are fine.
const TOLERANCE_PX = 0.5;
const NAV_TIMEOUT_MS = 30_000;

function usage(message) {
  if (message) console.error(message);
  console.error('usage: node check_page.mjs PAGE.html SCREENSHOT.png [--timing-runs N] [--first-screen FIRST.png]');
  process.exit(2);
}

function parseArgs(argv) {
  const positional = [];
  let timingRuns = 1;
  let firstScreen = null;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--first-screen' || arg.startsWith('--first-screen=')) {
      const value = arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : argv[++i];
      if (!value) usage('--first-screen wants a file name');
      firstScreen = path.resolve(value);
    } else if (arg === '--timing-runs' || arg.startsWith('--timing-runs=')) {
      const value = arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : argv[++i];
      if (!/^\d+$/.test(value ?? '') || Number(value) < 1) usage(`--timing-runs wants a whole number >= 1, not ${value}`);
      timingRuns = Number(value);
    } else if (arg === '-h' || arg === '--help') {
      usage();
    } else if (arg.startsWith('--')) {
      usage(`unknown option ${arg}`);
    } else {
      positional.push(arg);
    }
  }
  if (positional.length !== 2) usage();
  return { page: path.resolve(positional[0]), screenshot: path.resolve(positional[1]), timingRuns, firstScreen };
}

const results = [];
function report(ok, check, detail) {
  results.push(ok);
  console.log(`${ok ? 'ok  ' : 'FAIL '}${check}: ${detail}`);
}
const skip = (check) => report(true, check, 'skipped: no map in this report');

// Whether a URL may be loaded: the page must be self-contained, so only its
// own file and inline data (data:, blob:, about:) are allowed.
const allowedUrl = (url) => /^(file|data|blob|about):/i.test(url);

// Opens a fresh page on the context with every request that is not file://
// (or inline data) aborted and recorded in `blocked`, and WebSockets refused.
async function openGuardedPage(context, blocked) {
  const page = await context.newPage();
  await page.route('**/*', (route) => {
    const url = route.request().url();
    if (allowedUrl(url)) return route.continue();
    blocked.add(url);
    return route.abort('blockedbyclient');
  });
  // Requests the router never sees (should there be any) still count.
  page.on('request', (request) => {
    if (!allowedUrl(request.url())) blocked.add(request.url());
  });
  // WebSockets are refused without connecting. A routed socket never shows
  // as a page 'websocket' event, so it is recorded here.
  await page.routeWebSocket(/.*/, (ws) => {
    blocked.add(ws.url());
    ws.close();
  });
  return page;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
};
const ms = (x) => (x == null ? 'n/a' : `${x.toFixed(1)} ms`);

// Everything read from the page in one go, in the page itself. Returns plain
// data: the page data, the map's groups with their text lines and boxes, and
// the charts' polylines.
function readPage() {
  const out = { dataError: null, data: null, map: null, figures: {} };
  const script = document.getElementById('page-data');
  if (!script) {
    out.dataError = 'no <script id="page-data">';
  } else if (script.getAttribute('type') !== 'application/json') {
    out.dataError = `<script id="page-data"> has type ${JSON.stringify(script.getAttribute('type'))}, not application/json`;
  } else {
    try {
      out.data = JSON.parse(script.textContent);
    } catch (e) {
      out.dataError = `page-data is not JSON: ${e.message}`;
    }
  }

  const norm = (s) => s.replace(/\s+/g, ' ').trim();
  // One line per <tspan> child of a <text>, or per <text> that has none.
  const lines = (g) => {
    const result = [];
    for (const text of g.querySelectorAll('text')) {
      const tspans = text.querySelectorAll(':scope > tspan');
      if (tspans.length) for (const t of tspans) result.push(norm(t.textContent));
      else result.push(norm(text.textContent));
    }
    return result;
  };
  const box = (el) => {
    if (!el) return null;
    const r = el.getBoundingClientRect();
    return { left: r.left, top: r.top, right: r.right, bottom: r.bottom, width: r.width, height: r.height };
  };

  const svg = document.getElementById('service-map');
  if (svg) {
    out.map = {
      isSvg: svg instanceof SVGSVGElement,
      box: box(svg),
      nodes: [...svg.querySelectorAll('g.node')].map((g) => ({
        id: g.getAttribute('data-node-id'),
        lines: lines(g),
        rect: box(g.querySelector('rect')),
        box: box(g),
      })),
      edges: [...svg.querySelectorAll('g.edge')].map((g) => {
        const label = g.querySelector('g.edge-label');
        return {
          from: g.getAttribute('data-from'),
          to: g.getAttribute('data-to'),
          paths: g.querySelectorAll('path').length,
          hasLabel: !!label,
          lines: label ? lines(label) : [],
          rect: label ? box(label.querySelector('rect')) : null,
          box: box(label),
        };
      }),
      legends: [...svg.querySelectorAll('g.legend')].map(box),
    };
  }

  for (const figure of document.querySelectorAll('figure')) {
    if (!figure.id) continue;
    const fsvg = figure.querySelector('svg');
    out.figures[figure.id] = {
      isChart: figure.classList.contains('chart'),
      hasSvg: !!fsvg,
      polylines: fsvg
        ? [...fsvg.querySelectorAll('polyline')].map((p) => ({
            stroke: (p.getAttribute('stroke') || '').trim().toLowerCase(),
            points: p.points.numberOfItems,
          }))
        : [],
    };
  }
  return out;
}

// Resolves once the page has both a finished load event and (if it comes
// within a few seconds) a first contentful paint; times are from navigation
// start, in milliseconds.
function readTimings() {
  return new Promise((resolve) => {
    const started = performance.now();
    const poll = () => {
      const nav = performance.getEntriesByType('navigation')[0];
      const fcp = performance.getEntriesByType('paint').find((e) => e.name === 'first-contentful-paint');
      const loaded = nav && nav.loadEventEnd > 0;
      if ((loaded && fcp) || performance.now() - started > 5000) {
        resolve({ load: loaded ? nav.loadEventEnd : null, fcp: fcp ? fcp.startTime : null });
      } else {
        setTimeout(poll, 20);
      }
    };
    poll();
  });
}

const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
const show = (lines) => JSON.stringify(lines);
const norm = (s) => String(s).replace(/\s+/g, ' ').trim();

function checkMap(seen) {
  const data = seen.data;
  const map = data?.map ?? null;
  const CHECKS = ['map nodes', 'map edges', 'no overlaps in the map', 'everything visible'];
  if (typeof data !== 'object' || data === null) {
    CHECKS.forEach((c) => report(false, c, 'no usable page-data'));
    return;
  }
  if (map === null && !seen.map) {
    CHECKS.forEach(skip);
    return;
  }
  if (map === null || !seen.map || !seen.map.isSvg || !Array.isArray(map.nodes) || !Array.isArray(map.edges)) {
    const why = !seen.map
      ? 'page-data has a map but the page has no <svg id="service-map">'
      : !seen.map.isSvg
        ? '#service-map is not an <svg>'
        : map === null
          ? 'the page has #service-map but page-data.map is null'
          : 'page-data.map lacks a nodes or edges array';
    CHECKS.forEach((c) => report(false, c, why));
    return;
  }

  // 3. nodes
  {
    const problems = [];
    if (seen.map.nodes.length !== map.nodes.length)
      problems.push(`${seen.map.nodes.length} g.node in the svg, ${map.nodes.length} in map.nodes`);
    for (const node of map.nodes) {
      const groups = seen.map.nodes.filter((g) => g.id === node.id);
      const want = (node.label ?? []).map(norm);
      if (groups.length === 0) problems.push(`node "${node.id}": no g.node[data-node-id]`);
      else if (groups.length > 1) problems.push(`node "${node.id}": ${groups.length} groups`);
      else if (!groups[0].rect) problems.push(`node "${node.id}": no <rect>`);
      else if (!same(groups[0].lines, want))
        problems.push(`node "${node.id}": text lines ${show(groups[0].lines)}, label ${show(want)}`);
    }
    report(problems.length === 0, 'map nodes', problems.length ? problems.join('; ') : `${map.nodes.length} nodes, labels match`);
  }

  // 4. edges (several edges may share a pair: each is matched to one group)
  {
    const problems = [];
    if (seen.map.edges.length !== map.edges.length)
      problems.push(`${seen.map.edges.length} g.edge in the svg, ${map.edges.length} in map.edges`);
    const unused = [...seen.map.edges];
    for (const edge of map.edges) {
      const name = `${edge.from}→${edge.to}`;
      const want = (edge.label ?? []).map(norm);
      const candidates = unused.filter((g) => g.from === edge.from && g.to === edge.to);
      if (candidates.length === 0) {
        problems.push(`edge ${name}: no g.edge[data-from][data-to]`);
        continue;
      }
      const match = candidates.find((g) => same(g.lines, want)) ?? candidates[0];
      unused.splice(unused.indexOf(match), 1);
      if (match.paths === 0) problems.push(`edge ${name}: no <path>`);
      if (!match.hasLabel) problems.push(`edge ${name}: no g.edge-label`);
      else if (!match.rect) problems.push(`edge ${name}: its label has no <rect>`);
      else if (!same(match.lines, want)) problems.push(`edge ${name}: label lines ${show(match.lines)}, label ${show(want)}`);
    }
    report(problems.length === 0, 'map edges', problems.length ? problems.join('; ') : `${map.edges.length} edges, labels match`);
  }

  // The boxes of the map's parts, with a description each.
  const parts = [];
  for (const n of seen.map.nodes) if (n.rect) parts.push({ what: `node "${n.id}"`, rect: n.rect, box: n.box });
  for (const e of seen.map.edges)
    if (e.rect) parts.push({ what: `edge label ${e.from}→${e.to}`, rect: e.rect, box: e.box });
  seen.map.legends.forEach((b, i) =>
    parts.push({ what: seen.map.legends.length > 1 ? `legend #${i + 1}` : 'legend', rect: b, box: b }),
  );

  // 6. overlaps: node rects, edge label rects and the legend group.
  {
    const overlap = (a, b) =>
      Math.min(a.right, b.right) - Math.max(a.left, b.left) > TOLERANCE_PX &&
      Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > TOLERANCE_PX;
    let found = null;
    let pairs = 0;
    for (let i = 0; i < parts.length && !found; i++)
      for (let j = i + 1; j < parts.length && !found; j++) {
        pairs++;
        if (overlap(parts[i].rect, parts[j].rect)) found = [parts[i], parts[j]];
      }
    const fmt = (r) => `(${r.left.toFixed(1)},${r.top.toFixed(1)})-(${r.right.toFixed(1)},${r.bottom.toFixed(1)})`;
    if (seen.map.legends.length === 0) report(false, 'no overlaps in the map', 'no g.legend in #service-map');
    else if (found)
      report(false, 'no overlaps in the map', `${found[0].what} ${fmt(found[0].rect)} vs ${found[1].what} ${fmt(found[1].rect)}`);
    else report(true, 'no overlaps in the map', `${parts.length} boxes, ${pairs} pairs, none overlap`);
  }

  // 7. visible: each node, edge label and legend (the whole group, so its
  // text too) lies inside the svg's own box, so the svg clips none of it.
  {
    const svg = seen.map.box;
    const outside = parts.filter(
      (p) =>
        p.box.left < svg.left - TOLERANCE_PX ||
        p.box.top < svg.top - TOLERANCE_PX ||
        p.box.right > svg.right + TOLERANCE_PX ||
        p.box.bottom > svg.bottom + TOLERANCE_PX,
    );
    if (svg.width === 0 || svg.height === 0) report(false, 'everything visible', `#service-map is ${svg.width}×${svg.height} px`);
    else if (outside.length)
      report(
        false,
        'everything visible',
        outside
          .map((p) => `${p.what} (${p.box.left.toFixed(1)},${p.box.top.toFixed(1)})-(${p.box.right.toFixed(1)},${p.box.bottom.toFixed(1)})`)
          .join(', ') + ` outside the svg (${svg.left.toFixed(1)},${svg.top.toFixed(1)})-(${svg.right.toFixed(1)},${svg.bottom.toFixed(1)})`,
      );
    else report(true, 'everything visible', `${parts.length} boxes inside the ${svg.width.toFixed(0)}×${svg.height.toFixed(0)} svg`);
  }
}

// 5. each series is exactly one polyline of its colour with one point per data point.
function checkCharts(seen) {
  const charts = seen.data?.charts;
  if (!Array.isArray(charts)) {
    report(false, 'chart points', seen.data ? 'page-data.charts is not an array' : 'no usable page-data');
    return;
  }
  const problems = [];
  let series = 0;
  for (const chart of charts) {
    const figure = seen.figures[chart.id];
    if (!figure) {
      problems.push(`chart "${chart.id}": no <figure id="${chart.id}">`);
      continue;
    }
    if (!figure.isChart) problems.push(`chart "${chart.id}": the figure lacks class "chart"`);
    if (!figure.hasSvg) {
      problems.push(`chart "${chart.id}": no <svg> in the figure`);
      continue;
    }
    for (const s of chart.series ?? []) {
      series++;
      const color = String(s.color).trim().toLowerCase();
      const want = (s.points ?? []).length;
      const lines = figure.polylines.filter((p) => p.stroke === color);
      if (lines.length !== 1)
        problems.push(`chart "${chart.id}" series "${s.name}": ${lines.length} polylines with stroke ${s.color}, want 1`);
      else if (lines[0].points !== want)
        problems.push(`chart "${chart.id}" series "${s.name}": polyline has ${lines[0].points} points, series has ${want}`);
    }
  }
  report(problems.length === 0, 'chart points', problems.length ? problems.join('; ') : `${charts.length} charts, ${series} series, points match`);
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  let size;
  try {
    size = (await fs.stat(args.page)).size;
  } catch (e) {
    report(false, 'page', `cannot read ${args.page}: ${e.message}`);
    process.exit(1);
  }
  const url = pathToFileURL(args.page).href;
  const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';

  // A fresh profile for this run. playwright-core's chromium.launch() throws
  // on a --user-data-dir in args ("Pass userDataDir parameter to
  // 'browserType.launchPersistentContext(userDataDir, options)' instead") and
  // has no userDataDir option, so the profile goes to launchPersistentContext,
  // which passes it to Chromium as --user-data-dir itself. headless: true
  // makes playwright-core add its own --headless (and --hide-scrollbars,
  // --mute-audio); ours stays in args as the flag list CI documents.
  const userDataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'loadgen-page-check-'));
  let context;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath,
      args: CHROMIUM_ARGS,
      headless: true,
      viewport: { width: 1280, height: 900 },
    });
    const blocked = new Set();
    const page = await openGuardedPage(context, blocked);
    const errors = [];
    page.on('console', (msg) => {
      if (msg.type() === 'error') errors.push({ text: msg.text(), url: msg.location()?.url ?? '' });
    });
    page.on('pageerror', (err) => errors.push({ text: `uncaught ${err.name}: ${err.message}`, url: '' }));

    await page.goto(url, { waitUntil: 'load', timeout: NAV_TIMEOUT_MS });
    const seen = await page.evaluate(readPage);

    // 1. console errors. "Failed to load resource" for a request this script
    // aborted belongs to the network check and is not counted twice.
    const ownAborts = errors.filter((e) => e.text.startsWith('Failed to load resource') && blocked.has(e.url));
    const real = errors.filter((e) => !ownAborts.includes(e));
    report(
      real.length === 0,
      'no console errors',
      real.length
        ? real.map((e) => JSON.stringify(e.text)).join('; ')
        : `none${ownAborts.length ? ` (${ownAborts.length} from blocked requests, see below)` : ''}`,
    );
    // 2. network
    report(
      blocked.size === 0,
      'no network',
      blocked.size ? `blocked ${[...blocked].join(', ')}` : 'no request other than file://',
    );

    if (seen.dataError) report(false, 'page data', seen.dataError);
    else if (typeof seen.data !== 'object' || seen.data === null || Array.isArray(seen.data))
      report(false, 'page data', 'page-data is not a JSON object');
    else report(true, 'page data', `map ${seen.data.map ? 'present' : 'null'}, ${seen.data.charts?.length ?? 0} charts`);

    checkMap(seen);
    checkCharts(seen);

    try {
      await page.screenshot({ path: args.screenshot, fullPage: true });
      const png = (await fs.stat(args.screenshot)).size;
      report(true, 'screenshot', `${args.screenshot} (${png} bytes)`);
      if (args.firstScreen) {
        await page.screenshot({ path: args.firstScreen, fullPage: false });
        report(true, 'first screen', `${args.firstScreen} (${(await fs.stat(args.firstScreen)).size} bytes)`);
      }
    } catch (e) {
      report(false, 'screenshot', e.message);
    }
    await page.close();

    // Timing: fresh pages, printed only.
    const loads = [];
    const paints = [];
    for (let i = 0; i < args.timingRuns; i++) {
      const p = await openGuardedPage(context, new Set());
      await p.goto(url, { waitUntil: 'load', timeout: NAV_TIMEOUT_MS });
      const t = await p.evaluate(readTimings);
      if (t.load != null) loads.push(t.load);
      if (t.fcp != null) paints.push(t.fcp);
      await p.close();
    }
    const line = (what, xs) =>
      console.log(
        `time ${what}: median ${xs.length ? ms(median(xs)) : 'n/a'}, max ${xs.length ? ms(Math.max(...xs)) : 'n/a'} (${xs.length} of ${args.timingRuns} runs)`,
      );
    line('to load event', loads);
    line('to first contentful paint', paints);
    console.log(`size ${path.basename(args.page)}: ${size} bytes`);
  } catch (e) {
    report(false, 'run', e.stack || e.message);
  } finally {
    if (context) await context.close().catch(() => {});
    await fs.rm(userDataDir, { recursive: true, force: true });
  }
  const failed = results.filter((ok) => !ok).length;
  process.exit(failed ? 1 : 0);
}

main();
