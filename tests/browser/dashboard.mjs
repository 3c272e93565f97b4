// Drives the dashboard page in Debian's headless Chromium for tests/tests/dashboard_page.rs.
//   DASHBOARD_AUTHORIZATION=<Authorization header value> node dashboard.mjs <page url>
// (in the environment rather than the arguments, where any process could read it). Opens the
// page with the header on every request it makes (as a sign-in proxy would), prints
// one JSON line about the navigation, then answers one JSON line per command read from stdin:
//   snapshot         after the page's next completed read (or its refusal): tiles, table, charts
//   range <days>     clicks the range button of that many days; once that range is drawn, how
//                    long it took
//   reload           loads the page again; how long it took to draw its first figures
//   screenshot <p>   saves a full-page PNG at p
//   quit
import { chromium } from "playwright-core";
import readline from "node:readline";

const [url, authorizationArgument] = process.argv.slice(2);
const authorization = process.env.DASHBOARD_AUTHORIZATION || authorizationArgument;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  // The machines have no internet: without these Chromium keeps dialling Google's services.
  args: ["--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});
const context = await browser.newContext({
  viewport: { width: 1280, height: 900 },
  extraHTTPHeaders: authorization ? { authorization } : {},
});
const page = await context.newPage();
const problems = [];
page.on("console", (message) => message.type() === "error" && problems.push(message.text()));
page.on("pageerror", (error) => problems.push(error.message));
const outsideRequests = [];
page.on("request", (request) => new URL(request.url()).origin !== new URL(url).origin && outsideRequests.push(request.url()));

const answer = (value) => process.stdout.write(`${JSON.stringify(value)}\n`);
const response = await page.goto(url);
answer({ status: response.status(), headers: await response.allHeaders() });

let readsSeen = 0;
/** What the page shows once it has drawn a read after the last snapshot, or been refused. */
async function snapshot() {
  await page.waitForFunction((seen) => {
    const status = document.getElementById("status");
    return !status || Number(status.dataset.reads || 0) > seen || status.classList.contains("failed");
  }, readsSeen, { timeout: 30_000 });
  const shown = await page.evaluate(() => {
    const status = document.getElementById("status");
    const tiles = Object.fromEntries([...document.querySelectorAll("[data-kpi]")].map((o) => [o.dataset.kpi, o.textContent]));
    const rows = [...document.querySelectorAll("#channels tbody tr")].map((r) => [...r.cells].map((c) => c.textContent));
    const charts = {};
    for (const canvas of document.querySelectorAll("canvas")) {
      const chart = window.Chart && Chart.getChart(canvas);
      if (!chart) continue;
      const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
      let painted = 0;
      for (let i = 3; i < pixels.length; i += 4) if (pixels[i] !== 0) painted += 1;
      // What the chart drew for each value: a bar's height in pixels, an arc's angle in radians.
      const drawn = chart.data.datasets.map((_, i) => chart.getDatasetMeta(i).data.map((element) =>
        chart.config.type === "doughnut" ? element.circumference : Math.abs(element.base - element.y)));
      charts[canvas.id] = { type: chart.config.type, labels: chart.data.labels, painted, drawn,
        datasets: chart.data.datasets.map((d) => ({ label: d.label ?? null, data: d.data })) };
    }
    return { status: status && status.textContent, failed: !!status && status.classList.contains("failed"),
      reads: Number((status && status.dataset.reads) || 0), tiles, rows, charts };
  });
  readsSeen = shown.reads;
  return { ...shown, problems: problems.splice(0), outside_requests: outsideRequests.splice(0) };
}

for await (const line of readline.createInterface({ input: process.stdin })) {
  const [command, argument] = line.trim().split(/\s+/, 2);
  try {
    if (command === "snapshot") answer(await snapshot());
    else if (command === "range") {
      const started = Date.now();
      await page.click(`nav button[data-days="${argument}"]`);
      // The next read drawn for that range (an earlier range's answer may still land first).
      await page.waitForFunction(([seen, days]) => {
        const status = document.getElementById("status");
        return Number(status.dataset.reads || 0) > seen && status.dataset.range === days;
      }, [readsSeen, argument], { timeout: 30_000 });
      answer({ range: Number(argument), drawn_ms: Date.now() - started });
    } else if (command === "reload") {
      await page.reload();
      await page.waitForFunction(() => performance.getEntriesByName("figures-drawn").length > 0, null, { timeout: 30_000 });
      answer(await page.evaluate(() => {
        const navigation = performance.getEntriesByType("navigation")[0];
        return { drawn_ms: performance.getEntriesByName("figures-drawn")[0].startTime,
          response_end_ms: navigation.responseEnd, dom_content_loaded_ms: navigation.domContentLoadedEventEnd,
          page_bytes: navigation.encodedBodySize };
      }));
      readsSeen = 1;
    } else if (command === "screenshot") {
      await page.screenshot({ path: argument, fullPage: true });
      answer({ saved: argument });
    } else if (command === "quit") break;
    else answer({ error: `unknown command ${command}` });
  } catch (error) {
    answer({ error: error.message });
  }
}
await browser.close();
