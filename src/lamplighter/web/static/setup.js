// Setup: the running configuration, as the daemon reports it with secrets already hidden.
import { api, el, holdText, levelChip, say } from "./common.js";

export async function start() {
  const config = await api("api/config");
  document.getElementById("setup-content").replaceChildren(
    el("h2", {}, say("server")), settings([
      [say("listen"), config.server.listen], [say("apiToken"), config.server.token],
      [say("largestRequest"), say("bytes", { count: config.server.max_body_bytes })],
      [say("stateDirectory"), config.state_dir]]),
    el("h2", {}, say("lamps")),
    table(say("lamps"), [say("lamp"), say("url")], config.lamps.map((lamp) => [lamp.name, el("code", {}, lamp.url)])),
    el("h2", {}, say("sirens")),
    config.sirens.length
      ? table(say("sirens"), [say("siren"), say("url"), say("escalates")], config.sirens.map((siren) => sirenRow(siren, config.levels)))
      : el("p", { class: "muted" }, say("noSirens")),
    el("h2", {}, say("levels")),
    table(say("levels"), ["level", "look", "hold", "priority", "lamps", "quietHours", "escalation"].map((key) => say(key)),
      config.levels.map(levelRow)),
    el("h2", {}, say("guards")), settings([
      [say("dedupWindow"), config.guards.dedup_window], [say("perSender"), config.guards.per_sender],
      [say("perSource"), config.guards.per_source],
      [say("quietHoursSetting"), config.guards.quiet_hours.join("; ") || say("none")]]),
    el("h2", {}, say("sources")),
    ...(config.sources.length ? config.sources.map(source) : [el("p", { class: "muted" }, say("noneConfigured"))]));
}

export function update() {}  // the configuration changes only with a restart

function levelRow(level) {
  const color = level.color_name ? `${level.color_name} (${level.color})` : level.color;
  return [levelChip(level.name, level.color), `${color}, ${level.brightness}%, ${level.effect}`, holdText(level.hold),
    String(level.priority), level.lamps.join(", ") || say("none"), say(level.quiet_hours_bypass ? "shows" : "staysDark"),
    level.sirens.length ? say("escalateAfter", { sirens: level.sirens.join(", "), after: level.escalate_after })
      : say("none")];
}

function sirenRow(siren, levels) {
  const from = levels.filter((level) => level.sirens.includes(siren.name))
    .map((level) => `${level.name} (${level.escalate_after})`);
  return [siren.name, el("code", {}, siren.url), from.join(", ") || say("none")];
}

/** A setting's value as a person reads it: text, a list, or nested settings (a mail rule), never raw JSON. */
function readable(value) {
  if (value === null || value === undefined || value === "") return say("none");
  if (typeof value === "boolean") return say(value ? "yes" : "no");
  if (typeof value !== "object") return String(value);
  if (Array.isArray(value)) {
    if (value.every((item) => item === null || typeof item !== "object")) return value.map(readable).join(", ") || say("none");
    return el("ol", { class: "nested" }, value.map((item) => el("li", {}, readable(item))));
  }
  return el("dl", { class: "nested" }, Object.entries(value).flatMap(([key, item]) => [el("dt", {}, key), el("dd", {}, readable(item))]));
}

function source(entry) {
  const { name, type, ...rest } = entry;
  return el("section", { class: "panel" }, el("h3", {}, `${name || type} (${type})`),
    settings(Object.entries(rest).map(([key, value]) => [key, readable(value)])));
}

function settings(pairs) {
  return el("dl", { class: "settings panel" }, pairs.flatMap(([name, value]) => [el("dt", {}, name), el("dd", {}, value)]));
}

function table(label, headings, rows) {
  return el("div", { class: "table-scroll", role: "region", "aria-label": label, tabindex: "0" },
    el("table", {},
      el("thead", {}, el("tr", {}, headings.map((text) => el("th", { scope: "col" }, text)))),
      el("tbody", {}, rows.map((cells) => el("tr", {}, cells.map((cell, i) => el("td", { "data-label": headings[i] }, cell)))))));
}
