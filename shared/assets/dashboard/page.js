// The operations dashboard's page: reads GET /admin/dashboard (beside this page, so behind the
// same gateway, stage and staff auth) for the chosen range of UTC days, draws the figures with
// Chart.js, and reads them again every `refresh` seconds (a query parameter, 60 by default).
// The page never holds a token: whatever authenticated its own request authenticates the reads.
"use strict";
(() => {
  // The server answers hour by hour up to a week (MAX_HOURLY_DAYS in staff_api/dashboard.rs).
  const HOURLY_UP_TO_DAYS = 7;
  const params = new URLSearchParams(location.search);
  const refreshSeconds = Math.min(3600, Math.max(1, Number(params.get("refresh")) || 60));
  const figuresUrl = new URL("../dashboard", location.href);
  const colours = ["#2563eb", "#16a34a", "#dc2626", "#9333ea", "#ea580c", "#0891b2"];
  let days = 1;
  let timer = null;
  // The server's UTC day, from its last answer: the range ends there, whatever the browser's clock says.
  let serverToday = null;
  const charts = {};

  const STAGES = [["reserving", "Reserving"], ["awaiting_payment", "Awaiting payment"], ["fulfilling", "Fulfilling"],
    ["in_transit", "In transit"]];
  const count = (counts, metric) => (counts && counts[metric]) || 0;
  const converted = (counts) => count(counts, "orders_paid") + count(counts, "orders_cod_approved");
  const percent = (rate) => (rate == null ? "—" : `${(rate * 100).toFixed(1)}%`);
  const hours = (value) => (value == null ? "—" : `${value.toFixed(1)} h`);
  /** A stage's time as people say it: minutes under an hour, days beyond two. */
  function duration(hours) {
    if (hours < 1 / 60) return "under 1 min";
    if (hours < 1) return `${Math.round(hours * 60)} min`;
    return hours < 48 ? `${hours.toFixed(1)} h` : `${(hours / 24).toFixed(1)} d`;
  }
  /** The stage orders spent longest in, on average, with its time; none when no stage was timed. */
  function slowest(rates) {
    const timed = STAGES.filter(([stage]) => rates.hours_in_stage[stage] != null);
    if (timed.length === 0) return null;
    return timed.reduce((a, b) => (rates.hours_in_stage[b[0]] > rates.hours_in_stage[a[0]] ? b : a));
  }
  function slowestText(rates) {
    const stage = slowest(rates);
    return stage ? `${stage[1]} · ${duration(rates.hours_in_stage[stage[0]])}` : "—";
  }

  /** The range's query: none for today (the server's), else `days` UTC days up to the server's today. */
  function range() {
    if (days === 1 || serverToday == null) return "";
    const from = new Date(Date.parse(`${serverToday}T00:00:00Z`) - (days - 1) * 86400e3);
    return new URLSearchParams({ from: from.toISOString().slice(0, 10), to: serverToday }).toString();
  }

  /** Every hour (or day) of the range, so that quiet periods show as zeros, not as gaps. */
  function buckets(from, to, hourly) {
    const labels = [];
    for (let t = Date.parse(`${from}T00:00:00Z`); t <= Date.parse(`${to}T23:00:00Z`); ) {
      const iso = new Date(t).toISOString();
      labels.push(hourly ? iso.slice(0, 13) : iso.slice(0, 10));
      t += hourly ? 3600e3 : 86400e3;
    }
    return labels;
  }

  /** The rows of each bucket summed over channels: bucket → metric → count. */
  function perBucket(figures, hourly) {
    const rows = hourly ? figures.hours : figures.days;
    const sums = new Map();
    for (const row of rows) {
      const key = hourly ? row.hour : row.day;
      const into = sums.get(key) || {};
      for (const [metric, value] of Object.entries(row.counts)) into[metric] = (into[metric] || 0) + value;
      sums.set(key, into);
    }
    return sums;
  }

  function draw(id, config) {
    if (charts[id]) {
      charts[id].data = config.data;
      charts[id].update();
      return;
    }
    config.options = Object.assign({ responsive: true, maintainAspectRatio: false, animation: false }, config.options);
    charts[id] = new Chart(document.getElementById(id), config);
  }

  function series(labels, sums, metrics) {
    return metrics.map(([metric, label], i) => ({
      label,
      data: labels.map((bucket) => (metric === "converted" ? converted(sums.get(bucket)) : count(sums.get(bucket), metric))),
      backgroundColor: colours[i % colours.length],
      borderColor: colours[i % colours.length],
    }));
  }

  function tiles(total, now) {
    const values = {
      review_queue: now.review_queue,
      open_alerts: now.open_alerts,
      orders_received: count(total.counts, "orders_received"),
      orders_converted: converted(total.counts),
      conversion: percent(total.rates.conversion),
      payment_success: percent(total.rates.payment_success),
      refund: percent(total.rates.refund),
      after_sales: percent(total.rates.after_sales),
      on_time_delivery: percent(total.rates.on_time_delivery),
      average_delivery_hours: hours(total.rates.average_delivery_hours),
      orders_flagged: count(total.counts, "orders_flagged"),
      parcels_stuck: count(total.counts, "parcels_stuck"),
      parcel_alerts_cleared: count(total.counts, "parcel_alerts_cleared"),
      slas_breached: count(total.counts, "slas_breached"),
      slowest_stage: slowestText(total.rates),
    };
    for (const output of document.querySelectorAll("[data-kpi]")) output.textContent = String(values[output.dataset.kpi]);
  }

  function channelTable(byChannel) {
    const body = document.querySelector("#channels tbody");
    body.replaceChildren(
      ...byChannel.map((c) => {
        const row = document.createElement("tr");
        const cells = [c.channel, count(c.counts, "orders_received"), converted(c.counts), percent(c.rates.conversion),
          percent(c.rates.payment_success), percent(c.rates.refund), percent(c.rates.on_time_delivery)];
        row.replaceChildren(...cells.map((value) => Object.assign(document.createElement("td"), { textContent: String(value) })));
        return row;
      }),
    );
  }

  /** Draws the figures of a range of `wanted` days. */
  function render(figures, wanted) {
    const hourly = wanted <= HOURLY_UP_TO_DAYS;
    const labels = buckets(figures.from, figures.to, hourly);
    const sums = perBucket(figures, hourly);
    const axis = labels.map((l) => (hourly && wanted === 1 ? `${l.slice(11)}:00` : l));
    const bars = (metrics) => ({ type: "bar", data: { labels: axis, datasets: series(labels, sums, metrics) } });
    tiles(figures.total, figures.now);
    draw("chart-volume", bars([["orders_received", "Received"], ["converted", "Converted"], ["orders_rejected", "Rejected"],
      ["orders_expired", "Expired"], ["orders_cancelled", "Cancelled"]]));
    draw("chart-conversion", {
      type: "bar",
      data: {
        labels: figures.by_channel.map((c) => c.channel),
        datasets: [{ label: "Conversion %", backgroundColor: colours[0],
          data: figures.by_channel.map((c) => (c.rates.conversion == null ? null : Math.round(c.rates.conversion * 1000) / 10)) }],
      },
      options: { scales: { y: { beginAtZero: true, suggestedMax: 100 } } },
    });
    draw("chart-payments", {
      type: "doughnut",
      data: {
        labels: ["Succeeded", "Failed", "Refunds requested", "Refunds issued"],
        datasets: [{ backgroundColor: colours.slice(0, 4), data: ["payments_succeeded", "payments_failed",
          "refunds_requested", "refunds_issued"].map((m) => count(figures.total.counts, m)) }],
      },
    });
    draw("chart-logistics", bars([["parcels_dispatched", "Dispatched"], ["parcels_delivered", "Delivered"],
      ["parcels_delivered_on_time", "On time"], ["parcels_stuck", "Stuck"]]));
    draw("chart-after-sales", bars([["tickets_opened", "Tickets opened"], ["tickets_resolved", "Resolved"],
      ["slas_breached", "SLAs breached"]]));
    const bottleneck = slowest(figures.total.rates);
    draw("chart-stages", {
      type: "bar",
      data: {
        labels: STAGES.map(([, label]) => label),
        datasets: [{ label: "Average hours (the slowest in red)",
          backgroundColor: STAGES.map((s) => (bottleneck && s[0] === bottleneck[0] ? colours[2] : colours[0])),
          data: STAGES.map(([stage]) => figures.total.rates.hours_in_stage[stage]) }],
      },
      options: { scales: { y: { beginAtZero: true } } },
    });
    channelTable(figures.by_channel);
  }

  function say(text, failed) {
    const status = document.getElementById("status");
    status.textContent = text;
    status.classList.toggle("failed", failed);
  }

  let asked = 0; // the latest read asked for: an answer to an earlier one arriving later is dropped

  async function refresh() {
    clearTimeout(timer);
    const request = ++asked;
    const wanted = days;
    const url = new URL(figuresUrl);
    url.search = range();
    const status = document.getElementById("status");
    try {
      const answer = await fetch(url, { credentials: "same-origin", headers: { accept: "application/json" },
        signal: AbortSignal.timeout(20_000) });
      if (request !== asked) return; // a newer read (another range, say) is under way
      if (answer.status === 401 || answer.status === 403) {
        // Asked again all the same: whatever signs the browser in may renew its credentials.
        say(answer.status === 401 ? "Not signed in" : "Your role may not read the dashboard", true);
      } else {
        if (!answer.ok) throw new Error(`the figures answered ${answer.status}`);
        const figures = await answer.json();
        if (request !== asked) return;
        serverToday = figures.today;
        if (wanted > 1 && !url.search) {
          // Asked before the server's day was known, so answered for today only: now ask for the range.
          timer = setTimeout(refresh, 0);
          return;
        }
        render(figures, wanted);
        say(`Updated ${new Date().toISOString().slice(11, 19)} UTC · every ${refreshSeconds} s`, false);
        // How many reads the page has drawn and of which range, for whoever watches it (the browser test).
        status.dataset.reads = String(Number(status.dataset.reads || 0) + 1);
        status.dataset.range = String(wanted);
        if (status.dataset.reads === "1") performance.mark("figures-drawn"); // the page's load time
      }
    } catch (failure) {
      if (request !== asked) return;
      say(`Could not read the figures (${failure.message}); trying again`, true);
    }
    timer = setTimeout(refresh, refreshSeconds * 1000);
  }

  for (const button of document.querySelectorAll("nav button")) {
    button.addEventListener("click", () => {
      days = Number(button.dataset.days);
      for (const other of document.querySelectorAll("nav button")) other.setAttribute("aria-pressed", String(other === button));
      refresh();
    });
  }
  refresh();
})();
