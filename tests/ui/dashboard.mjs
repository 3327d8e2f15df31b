// The daemon's page in a real browser (Debian's chromium, driven by
// playwright-core from daemon/ui/node_modules):
//
//   node tests/ui/dashboard.mjs URL TOKEN_URL TOKEN OUT_DIR
//
// URL is a daemon without a token, TOKEN_URL one that needs TOKEN. The
// page must load with no console error; a job submitted through the form
// appears in the table, and a bad one shows the API's field error at the
// form; the job's chart canvases have drawn pixels and its step count
// advances live; cancel works; with a token set, a request without it is
// refused and the page asks for it. Screenshots go to OUT_DIR. Exits 0
// when every check passed, printing one line per check.
import {createRequire} from "module";
import {mkdirSync} from "fs";

const require = createRequire(new URL("../../daemon/ui/package.json", import.meta.url));
const {chromium} = require("playwright-core");

const [url, tokenUrl, token, out] = process.argv.slice(2);
mkdirSync(out, {recursive: true});
let failed = 0;
const check = (ok, what) => {
  console.log(`${ok ? "ok" : "FAILED"}: ${what}`);
  if (!ok) failed++;
};

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const errors = [];
const page = await browser.newPage({viewport: {width: 1400, height: 1000}});
// The bad spec's 400 is logged by the browser as a failed load: expected.
page.on("console", (m) => {
  if (m.type() === "error" && !/status of 400/.test(m.text())) errors.push(m.text());
});
page.on("pageerror", (e) => errors.push(String(e.stack || e)));
page.setDefaultTimeout(20000);
// How many pixels of each canvas matching sel have been drawn.
const ink = (sel) => page.evaluate((q) => [...document.querySelectorAll(q)].map((c) => {
  const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
  return n;
}), sel);

try {
  // The jobs page, and a job submitted through the form.
  await page.goto(url + "/");
  await page.waitForSelector("#jobs");
  await page.waitForFunction(() => document.querySelector("#spec").value.includes("toy1d"));
  const spec = {task: "toy1d", method: "evograd", steps: 400000,
                toy1d: {trials: 1, points: 1, trajectory_steps: 1}};
  await page.fill("#spec", JSON.stringify(spec, null, 2));
  await page.click("#submit");
  const row = await page.waitForSelector("#jobs tbody tr[data-id]");
  const id = await row.getAttribute("data-id");
  check(Number(id) > 0, `the submitted job ${id} is in the table`);
  await page.waitForSelector(`#jobs tr[data-id="${id}"][data-state="running"]`);
  check(true, "the table shows it running (live)");
  const worker = await page.$eval(`#jobs tbody tr[data-id="${id}"] td.worker`, (td) => td.textContent);
  check(worker.includes(":"), `the job's worker is shown (${worker})`);

  // A bad spec: the API's field error at the form.
  await page.fill("#spec", JSON.stringify({task: "toy1d", evograd: {k: 0}}));
  await page.click("#submit");
  await page.waitForFunction(() => document.querySelector("#submit-error").textContent.length > 0);
  const said = await page.textContent("#submit-error");
  check(said.startsWith("evograd.k"), `a bad spec is refused at the form: "${said}"`);
  await page.screenshot({path: `${out}/jobs.png`, fullPage: true});

  // The job's page: charts drawn, steps advancing.
  await page.goto(`${url}/#/jobs/${id}`);
  await page.waitForSelector("#charts .chart canvas");
  await page.waitForTimeout(1500);
  const inked = await ink("#charts canvas");
  check(inked.length >= 5 && inked.every((n) => n > 500),
        `${inked.length} chart canvases with drawn pixels (${inked.join(", ")})`);
  const steps = async () => Number((await page.textContent("#job-steps")).split("/")[0]);
  const before = await steps();
  await page.waitForTimeout(2500);
  const after = await steps();
  check(after > before, `the step count advances live (${before} -> ${after})`);
  await page.check("#log-y");
  await page.waitForTimeout(300);
  await page.screenshot({path: `${out}/job.png`});
  await page.selectOption("#x-axis", "time");
  await page.waitForTimeout(700);
  const wallInk = await ink("#charts canvas");
  check(wallInk.length >= 5 && wallInk.every((n) => n > 500),
        `the charts redraw over wall-clock time (${wallInk.join(", ")})`);
  await page.screenshot({path: `${out}/job-wall-clock.png`});

  // Cancel.
  await page.click("#cancel-job");
  await page.waitForFunction(() => document.querySelector("#job-state").textContent === "canceled");
  check(true, "cancel works: the job is canceled");

  // Task pictures and the compare view, on jobs that ran to their end.
  const submitted = async (body) => {
    const r = await page.evaluate(async (b) => (await fetch("/v1/jobs", {method: "POST",
      headers: {"Content-Type": "application/json"}, body: JSON.stringify(b)})).json(), body);
    return r.id;
  };
  const toy = await submitted({task: "toy1d", method: "evograd", steps: 200,
    evograd: {k: 100, sigma: 1.0, tau: 0.5, noise: "gaussian"},
    toy1d: {x0: -1.8, lambda0: 0.2, trials: 10, points: 20}});
  const rot = await submitted({task: "rotation", method: "evograd", steps: 40, eval_every: 10,
                               eval_limit: 200});
  // Polls path from the page until its state is want (at most 120 s).
  const reaches = async (path, want) => {
    for (let t0 = Date.now(); Date.now() - t0 < 120000;) {
      const st = await page.evaluate(async (p) => (await (await fetch(p)).json()).state, path);
      if (st === want) return;
      if (want === "succeeded" && (st === "failed" || st === "canceled")) throw new Error(`${path} ${st}`);
      await new Promise((ok) => setTimeout(ok, 200));
    }
    throw new Error(`${path} did not reach ${want}`);
  };
  const ended = (jid) => reaches(`/v1/jobs/${jid}`, "succeeded");
  const mwn = await submitted({task: "mwn", method: "evograd", model: {name: "mlp"},
    dataset: {name: "fashion-mnist", noise: {kind: "uniform", rate: 0.4}},
    mwn: {meta_samples: 100}, steps: 20, eval_every: 10, eval_limit: 200});
  await ended(toy);
  await ended(rot);
  await ended(mwn);
  await page.goto(`${url}/#/jobs/${toy}`);
  await page.waitForSelector("#pictures canvas");
  const toyInk = await ink("#pictures canvas");
  check(toyInk.length === 2 && toyInk.every((n) => n > 2000),
        `toy1d's hypergradient curves and trajectories are drawn (${toyInk.join(", ")})`);
  await page.locator("#pictures").scrollIntoViewIfNeeded();
  await page.screenshot({path: `${out}/toy1d-pictures.png`, fullPage: true});
  await page.goto(`${url}/#/jobs/${rot}`);
  await page.waitForSelector("#pictures canvas");
  const rotInk = await ink("#pictures canvas");
  check(rotInk.length === 1 && rotInk[0] > 1000, `rotation's learned angle is drawn (${rotInk})`);
  await page.screenshot({path: `${out}/rotation.png`, fullPage: true});

  await page.goto(`${url}/#/jobs/${mwn}`);
  await page.waitForSelector("#pictures canvas");
  const mwnInk = await ink("#pictures canvas");
  check(mwnInk.length === 1 && mwnInk[0] > 1000, `the VNet's weight against the loss is drawn (${mwnInk})`);
  await page.locator("#pictures").scrollIntoViewIfNeeded();
  await page.screenshot({path: `${out}/mwn.png`});

  await page.goto(`${url}/#/`);
  await page.waitForSelector(`#jobs tr[data-id="${rot}"]`);
  await page.check(`input.pick[data-id="${id}"]`);
  await page.check(`input.pick[data-id="${toy}"]`);
  await page.click("#compare");
  await page.waitForSelector("#compare-chart canvas");
  await page.waitForTimeout(500);
  const series = await page.$$eval("#compare-chart .u-legend .u-series", (e) => e.length);
  const cmpInk = await ink("#compare-chart canvas");
  check(series === 3 && cmpInk[0] > 2000, `two jobs overlaid in the compare view (${series - 1} series)`);
  await page.screenshot({path: `${out}/compare.png`});

  // A sweep: its aggregate table and its jobs on one chart.
  const sweep = await page.evaluate(async () => (await (await fetch("/v1/sweeps", {method: "POST",
    headers: {"Content-Type": "application/json"}, body: JSON.stringify({name: "browser sweep",
      spec: {task: "toy1d", steps: 60, toy1d: {trials: 2, points: 3}},
      grid: {method: ["evograd", "t1t2"]}, repeats: 2})})).json()).id);
  await reaches(`/v1/sweeps/${sweep}`, "succeeded");
  await page.goto(`${url}/#/sweeps`);
  await page.waitForSelector(`#sweeps tr[data-id="${sweep}"]`);
  await page.goto(`${url}/#/sweeps/${sweep}`);
  await page.waitForSelector("#sweep-chart canvas");
  await page.waitForTimeout(300);
  const cells = await page.$$eval("#aggregate tbody tr", (rows) => rows.map((r) => r.textContent));
  const sweepInk = await ink("#sweep-chart canvas");
  check(cells.length === 2 && cells.every((c) => c.includes(" ± ")) && sweepInk[0] > 2000,
        `the sweep page shows its mean ± std per point (${cells.join(" / ")}) and its jobs on one chart`);
  await page.screenshot({path: `${out}/sweep.png`, fullPage: true});

  await page.goto(`${url}/#/devices`);
  await page.waitForSelector("#devices tbody tr");
  check(true, "the devices page lists a device");
  const workers = await page.$$eval("#workers tbody tr", (rows) => rows.map((r) => r.textContent));
  check(workers.length === 1 && workers[0].includes("alive") && workers[0].includes("cpu"),
        `the workers table shows this daemon, alive (${workers.join(" / ")})`);
  await page.screenshot({path: `${out}/devices.png`, fullPage: true});
  check(errors.length === 0, `no console error${errors.length ? ": " + errors.join(" | ") : ""}`);

  // A daemon with a token: refused without it, and the page asks for it.
  const tpage = await browser.newPage({viewport: {width: 1400, height: 800}});
  const terrors = [];
  tpage.on("pageerror", (e) => terrors.push(String(e)));
  await tpage.goto(tokenUrl + "/");
  const status = await tpage.evaluate(async () => (await fetch("/v1/jobs")).status);
  check(status === 401, `a request without the token is refused (${status})`);
  await tpage.waitForSelector("#token-dialog[open]");
  await tpage.screenshot({path: `${out}/token.png`});
  await tpage.fill("#token-input", token);
  await tpage.click("#token-form button");
  await tpage.waitForFunction(() => /\d+ jobs/.test(document.querySelector("#status").textContent));
  check(!(await tpage.$("#token-dialog[open]")), "with the token given, the jobs page loads");
  check(terrors.length === 0, `no page error with the token${terrors.length ? ": " + terrors.join(" | ") : ""}`);
} catch (e) {
  check(false, `the walk through the page stopped: ${e.message}`);
  await page.screenshot({path: `${out}/failure.png`, fullPage: true}).catch(() => {});
}
await browser.close();
console.log(failed ? `${failed} checks failed` : "every check passed");
process.exit(failed ? 1 : 0);
