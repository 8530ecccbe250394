// Timeline: recent events with outcome and reasons, filters kept in the address, and a chart
// of events per hour by level. Refreshes itself when the live stream reports activity.
import { api, clockTime, el, levelChip, origin, say, syncList } from "./common.js";

const FILTERS = ["level", "source", "sender", "outcome"];
const OTHER_COLOR = "#6b7785";
const SVG = "http://www.w3.org/2000/svg";
let levels = [];  // from /api/config, highest priority first
let pending = null;
let lastHourly = null;

export async function start() {
  levels = (await api("api/config")).levels;
  const form = document.getElementById("filters");
  const wanted = new URLSearchParams(window.location.search);
  for (const name of FILTERS) addOption(form.elements[name], wanted.get(name) || "");
  form.addEventListener("change", () => applyFilters(form));
  form.addEventListener("reset", () => setTimeout(() => applyFilters(form)));
  window.addEventListener("resize", () => lastHourly && renderChart(lastHourly));
  await refresh();
}

export function update(snapshot) {
  if (snapshot.activity.length && pending === null) {
    pending = setTimeout(() => { pending = null; refresh(); }, 250);  // one refresh for a burst of events
  }
}

function chosenFilters(form) {
  const query = new URLSearchParams();
  for (const name of FILTERS) if (form.elements[name].value) query.set(name, form.elements[name].value);
  return query;
}

function applyFilters(form) {
  const query = chosenFilters(form);
  // the page's own path: a bare "?query" would resolve against <base href>, not this page
  history.replaceState(null, "", query.size ? `${window.location.pathname}?${query}` : window.location.pathname);
  refresh();
}

async function refresh() {
  const form = document.getElementById("filters");
  const query = chosenFilters(form);
  const [timeline, hourly] = await Promise.all([api(`api/timeline?${query}`), api("api/timeline/hourly")]);
  for (const name of FILTERS) fillChoices(form.elements[name], timeline.choices[name]);
  renderEvents(timeline.events, query.size > 0);
  lastHourly = hourly;
  renderChart(hourly);
}

// ---- filters -----------------------------------------------------------------------------------------

function addOption(select, value) {
  if (value && ![...select.options].some((option) => option.value === value)) select.append(el("option", { value }, value));
  select.value = value;
}

function fillChoices(select, values) {
  const chosen = select.value;
  const wanted = ["", ...values.filter((v) => v !== chosen), ...(chosen ? [chosen] : [])];
  if ([...select.options].map((o) => o.value).join("\n") === wanted.join("\n")) return;
  select.replaceChildren(...wanted.map((value) => el("option", { value }, value || say("anyValue"))));
  select.value = chosen;
}

// ---- events ------------------------------------------------------------------------------------------

function colorOf(level) {
  const known = levels.find((l) => l.name === level);
  return known ? known.color : OTHER_COLOR;
}

function renderEvents(events, filtered) {
  const key = !events.length ? (filtered ? "noMatch" : "noEvents")
    : `${events.length === 1 ? "oneEvent" : "events"}${filtered ? "Filtered" : ""}`;
  document.getElementById("events-count").textContent = say(key, { count: events.length });
  syncList(document.getElementById("events"), events, (e) => e.id,
    () => el("li", { class: "event" }), (node, event) => node.replaceChildren(...eventParts(event)));
}

function eventParts(event) {
  const stamp = new Date(event.received_at * 1000).toISOString();
  return [
    el("time", { datetime: stamp }, clockTime(event.received_at, true)),
    el("span", {}, levelChip(event.level, colorOf(event.level))),
    el("span", { class: "event-title" }, event.title),
    el("span", { class: "event-detail" },
      el("span", { class: `outcome outcome-${event.outcome}` }, event.outcome), " ",
      event.reasons.length ? `${event.reasons.join("; ")} · ` : "",
      `${origin(event.sender, event.source)} · ${say("event", { id: event.id })}`, afterwards(event)),
  ];
}

function afterwards(event) {
  if (event.active) return ` · ${say("stillActive")}`;
  if (!event.ended) return "";
  return ` · ${say("then", { reason: event.ended.reason, time: clockTime(event.ended.at) })}`;
}

// ---- chart -------------------------------------------------------------------------------------------

function svg(tag, attributes = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

function renderChart({ start, hours, counts }) {
  const order = [...levels.map((l) => l.name).filter((name) => name in counts),
    ...Object.keys(counts).filter((name) => !levels.some((l) => l.name === name))];
  const totals = order.map((level) => [level, counts[level].reduce((a, b) => a + b, 0)]);
  const all = totals.reduce((sum, [, n]) => sum + n, 0);
  const caption = document.getElementById("chart-caption");
  caption.replaceChildren(
    say(!all ? "chartNone" : all === 1 ? "chartOne" : "chartMany", { count: all, days: hours / 24 }),
    el("span", { class: "legend" }, totals.map(([level, n]) => el("span", {}, levelChip(level, colorOf(level)), ` ${n}`))));
  const chart = document.getElementById("chart");
  chart.replaceChildren(chartSvg(start, hours, counts, order, Math.max(300, chart.clientWidth)));
}

/** Drawn at the size it is shown, so its text stays readable on a phone. */
function chartSvg(start, hours, counts, order, width) {
  const [height, left, bottom] = [170, 28, 22];
  const barWidth = (width - left) / hours;
  const highest = Math.max(1, ...Array.from({ length: hours }, (_, i) => order.reduce((sum, l) => sum + counts[l][i], 0)));
  const scale = (height - bottom - 8) / highest;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-labelledby": "chart-caption" },
    svg("line", { class: "axis", x1: left, x2: width, y1: height - bottom, y2: height - bottom }),
    svg("text", { x: left - 4, y: 14, "text-anchor": "end" }, String(highest)),
    svg("text", { x: left - 4, y: height - bottom, "text-anchor": "end" }, "0"));
  for (let i = 0; i < hours; i += 1) {
    const at = new Date((start + i * 3600) * 1000);
    const x = left + i * barWidth;
    if (at.getHours() === 0) {
      chart.append(svg("line", { class: "axis", x1: x, x2: x, y1: 8, y2: height - bottom + 4 }),
        svg("text", { x: x + 3, y: height - 6 }, `${at.toLocaleDateString([], { weekday: "short" })} ${at.getDate()}`));
    }
    let y = height - bottom;
    for (const level of order) {
      const n = counts[level][i];
      if (!n) continue;
      y -= n * scale;
      chart.append(svg("rect", { x: x + 0.5, y, width: Math.max(1, barWidth - 1), height: n * scale, fill: colorOf(level),
        "data-level": level }, svg("title", {}, `${clockTime(start + i * 3600)}: ${level} ${n}`)));
    }
  }
  return chart;
}
