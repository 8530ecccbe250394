// Setup: the running configuration, as the daemon reports it with secrets already hidden.
import { api, el, levelChip } from "./common.js";

export async function start() {
  const config = await api("api/config");
  document.getElementById("setup-content").replaceChildren(
    el("h2", {}, "Server"), settings([
      ["listen", config.server.listen], ["API token", config.server.token],
      ["largest request", `${config.server.max_body_bytes} bytes`], ["state directory", config.state_dir]]),
    el("h2", {}, "Lamps"),
    table("Lamps", ["Lamp", "URL"], config.lamps.map((lamp) => [lamp.name, el("code", {}, lamp.url)])),
    el("h2", {}, "Levels"),
    table("Levels", ["Level", "Look", "Hold", "Priority", "Lamps", "Quiet hours"], config.levels.map(levelRow)),
    el("h2", {}, "Guards"), settings([
      ["same key again within", config.guards.dedup_window], ["per sender", config.guards.per_sender],
      ["per source and level", config.guards.per_source],
      ["quiet hours", config.guards.quiet_hours.join("; ") || "none"]]),
    el("h2", {}, "Sources"),
    ...(config.sources.length ? config.sources.map(source) : [el("p", { class: "muted" }, "None configured.")]));
}

export function update() {}  // the configuration changes only with a restart

function levelRow(level) {
  const color = level.color_name ? `${level.color_name} (${level.color})` : level.color;
  return [levelChip(level.name, level.color), `${color}, ${level.brightness}%, ${level.effect}`, level.hold,
    String(level.priority), level.lamps.join(", ") || "none", level.quiet_hours_bypass ? "shows" : "stays dark"];
}

function source(entry) {
  const { name, type, ...rest } = entry;
  return el("section", { class: "panel" }, el("h3", {}, `${name || type} (${type})`),
    settings(Object.entries(rest).map(([key, value]) => [key, typeof value === "string" ? value : JSON.stringify(value)])));
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
