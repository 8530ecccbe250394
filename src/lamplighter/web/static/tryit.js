// Try it: send a test event of any level through the real pipeline, and preview a level's look.
import { api, describeState, el, holdText, paintSwatch, say, sayWith, swatch, syncList } from "./common.js";

let levels = [];

export async function start() {
  levels = (await api("api/config")).levels;
  const select = document.getElementById("try-level");
  select.replaceChildren(...levels.map((level) => el("option", { value: level.name }, level.name)));
  select.addEventListener("change", showLevel);
  document.getElementById("preview").append(swatch(), el("p", { id: "preview-text" }));
  showLevel();
  document.getElementById("try-form").addEventListener("submit", send);
}

export function update(snapshot) {
  offerLamps(snapshot.lamps.map((lamp) => lamp.name));
  syncList(document.getElementById("try-lamps"), snapshot.lamps, (lamp) => lamp.name,
    (lamp) => el("li", {}, swatch(), el("span", {}, lamp.name)),
    (node, lamp) => paintSwatch(node.querySelector(".swatch"), lamp.state,
      `${lamp.name}: ${describeState(lamp.state, lamp.color_name)}`));
}

function offerLamps(names) {
  const select = document.getElementById("try-lamp");
  const offered = [...select.options].slice(1).map((option) => option.value);
  if (offered.join() === names.join()) return;
  select.replaceChildren(select.options[0], ...names.map((name) => el("option", { value: name }, name)));
}

function chosenLevel() {
  return levels.find((level) => level.name === document.getElementById("try-level").value);
}

function lookOfLevel(level) {
  return { on: true, color: level.color, brightness: level.brightness, effect: level.effect };
}

function showLevel() {
  const level = chosenLevel();
  const look = describeState(lookOfLevel(level), level.color_name);
  document.getElementById("try-level-info").textContent = say("levelInfo", { look, hold: holdText(level.hold),
    priority: level.priority, lamps: level.lamps.join(", ") || say("noLamp") });
  paintSwatch(document.querySelector("#preview .swatch"), lookOfLevel(level), say("previewOf", { level: level.name, look }));
  document.getElementById("preview-text").textContent = `${level.name}: ${look}`;
}

async function send(event) {
  event.preventDefault();
  const form = event.target;
  const level = chosenLevel();
  const result = document.getElementById("try-result");
  const lamps = form.elements.lamp.value ? [form.elements.lamp.value] : [];
  const body = { level: level.name, title: form.elements.title.value, sender: "dashboard", labels: { test: "true" }, lamps };
  try {
    result.replaceChildren(...describeReceipt(await api("api/events", { method: "POST", body }), level, lamps));
    result.classList.remove("error");
  } catch (error) {
    result.textContent = say("notSent", { error: error.message });
    result.classList.add("error");
  }
}

function describeReceipt(receipt, level, lamps) {
  const { id, outcome, reasons } = receipt;
  if (outcome !== "shown") return [say(reasons.length ? "receiptWhy" : "receipt", { id, outcome, reasons: reasons.join("; ") })];
  const where = (lamps.length ? lamps : level.lamps).join(", ");
  const now = el("a", { href: "dashboard" }, say("nowView"));
  return level.hold === "until acknowledged" ? sayWith("shownUntilAcked", { id, lamps: where, now })
    : sayWith("shownHold", { id, lamps: where, now, hold: level.hold });
}
