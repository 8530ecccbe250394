// What every dashboard view shares: the words, the API (with the CSRF token), building DOM, time and colour.

const csrf = document.querySelector('meta[name="csrf-token"]').content;
// every word the scripts write, in the reader's language (DASHBOARD_SCRIPT in lamplighter/web/page_text.py)
const WORDS = JSON.parse(document.getElementById("words").textContent);

/** The words of `key` with its {placeholders} filled from `values` (any not given stay as they are). */
export function say(key, values = {}) {
  return WORDS[key].replace(/\{(\w+)\}/g, (match, name) => (name in values ? String(values[name]) : match));
}

/** say() as DOM children, where a value may be an element: say("shownUntilAcked", {now: link}). */
export function sayWith(key, values) {
  return WORDS[key].split(/(\{\w+\})/).filter(Boolean)
    .map((part) => (/^\{\w+\}$/.test(part) && part.slice(1, -1) in values ? values[part.slice(1, -1)] : part));
}

/** Call the daemon's API; resolves to the JSON answer, rejects with the server's own error text. */
export async function api(path, { method = "GET", body } = {}) {
  const headers = { "X-CSRF-Token": csrf };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body),
  });
  const answer = response.status === 204 ? {} : await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(answer.error || `${response.status} ${response.statusText}`);
  return answer;
}

/** el("p", {class: "muted"}, "text", child): attributes, event handlers (onclick) and children. */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children.flat().filter((child) => child !== null && child !== undefined && child !== false));
  return node;
}

/** Show a short message for everyone (screen readers too); errors are marked as such. */
export function notify(message, isError = false) {
  const notice = document.getElementById("notice");
  notice.textContent = message;
  notice.classList.toggle("error", isError);
}

/**
 * Keep a list's items in step with data without rebuilding items that stay, so that focus,
 * chosen options and running animations survive a live update.
 */
export function syncList(list, items, key, create, update) {
  const existing = new Map([...list.children].map((node) => [node.dataset.key, node]));
  items.forEach((item, index) => {
    const id = String(key(item));
    const node = existing.get(id) || create(item);
    node.dataset.key = id;
    existing.delete(id);
    update(node, item);
    if (list.children[index] !== node) list.insertBefore(node, list.children[index] || null);
  });
  existing.forEach((node) => node.remove());
}

/** Who sent an event and through which source: "from alice via api", or "via watchdog" when they are one. */
export function origin(sender, source) {
  return sender && sender !== source ? say("fromVia", { sender, source }) : say("via", { source });
}

// ---- time: the server's clock, so that "7s left" is right even if this device's clock is not ----

let clockOffset = 0;

export function syncClock(serverTime) {
  clockOffset = serverTime - Date.now() / 1000;
}

function serverNow() {
  return Date.now() / 1000 + clockOffset;
}

function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${String(Math.floor(s % 3600 / 60)).padStart(2, "0")}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor(s % 86400 / 3600)}h`;
}

export function ago(at) {
  const seconds = serverNow() - at;
  return seconds < 5 ? say("justNow") : say("ago", { duration: duration(seconds) });
}

/** "14:02" today, "Tue 14:02" on another day; `seconds` adds ":05". */
export function clockTime(at, seconds = false) {
  const date = new Date(at * 1000);
  const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: seconds ? "2-digit" : undefined });
  const today = new Date(serverNow() * 1000).toDateString() === date.toDateString();
  return today ? time : `${date.toLocaleDateString([], { weekday: "short" })} ${time}`;
}

/** A span that counts down to `until` (refreshed every second by main.js): "7s left", or in words with {duration}. */
export function countdown(until, words = say("left")) {
  const node = el("span", { dataset: { until: String(until), words } });
  refreshCountdown(node);
  return node;
}

function refreshCountdown(node) {
  node.textContent = node.dataset.words.replace("{duration}", duration(Number(node.dataset.until) - serverNow()));
}

export function refreshCountdowns() {
  document.querySelectorAll("[data-until]").forEach(refreshCountdown);
}

// ---- colour ----------------------------------------------------------------------------------------

function channels(hex) {
  const n = parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

function luminance(rgb) {
  const [r, g, b] = rgb.map((v) => {
    const c = v / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

/** Black or white, whichever reads better on `hex` (WCAG contrast). */
function textOn(hex) {
  const l = luminance(channels(hex));
  return (l + 0.05) / 0.05 >= 1.05 / (l + 0.05) ? "#000" : "#fff";
}

/** A level's name in its colour. */
export function levelChip(level, color) {
  const chip = el("span", { class: "chip" }, level);
  chip.style.backgroundColor = color || "#3a4452";
  chip.style.color = textOn(color || "#3a4452");
  return chip;
}

/** What a lamp state looks like on screen: its colour dimmed by brightness, as the lamp page does. */
function lookOf(state) {
  if (!state || !state.on) return { css: "", effect: "" };
  const f = Math.max(0, Math.min(100, state.brightness)) / 100;
  const [r, g, b] = channels(state.color).map((v) => Math.round(v * f));
  return { css: `rgb(${r}, ${g}, ${b})`, effect: state.effect === "solid" ? "" : state.effect };
}

/** A level's hold as /api/config gives it ("until acknowledged" or a duration), in the reader's words. */
export function holdText(hold) {
  return hold === "until acknowledged" ? say("untilAcked") : hold;
}

export function describeState(state, colorName) {
  if (!state) return say("stateUnknown");
  if (!state.on) return say("off");
  const color = colorName ? `${colorName} (${state.color})` : state.color;
  return `${color}, ${state.brightness}%, ${state.effect}`;
}

/** Paint a swatch element with a lamp state; its accessible name says the same in words. */
export function paintSwatch(node, state, label) {
  const look = lookOf(state);
  node.style.backgroundColor = look.css;
  node.style.setProperty("--glow", look.css || "transparent");
  node.className = `swatch ${look.effect}`.trim();
  node.dataset.on = String(Boolean(state && state.on));
  node.setAttribute("aria-label", label);
}

export function swatch() {
  return el("div", { class: "swatch", role: "img" });
}
